"""The inputs a benchmark runs on: the shared corpus plus large photos made from it.

Large photos are a real corpus photo upscaled with libvips to a given number of megapixels
and saved once under ``benchmarks/.cache/`` (gitignored). They are made lazily, on the first
run that needs them, because a 250 MP JPEG takes a while to write.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO / ".." / "shared" / "corpus" / "good"
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
# An ordinary 2725x2225 camera photo: upscaled, it still looks and compresses like a photo.
LARGE_SOURCE = "2569067123_aca715a2ee_o.jpg"
# From this many pixels on, an input counts as "large", whatever its format.
LARGE_PIXELS = 10_000_000
# HEVC HEIC is a kind of its own at any size: no shrink-on-load, a decoder outside libvips.
KINDS = ("jpeg", "png", "other", "heic", "large")
# Photos as people upload them, 2 to 15 MP: the corpus' own camera photos, and camera and
# wallpaper sizes made from a real photo (upscaled, with grain, as large_photo explains).
# They are a set of their own in the report ("photos"), across the kinds above.
CORPUS_PHOTOS = frozenset({"2569067123_aca715a2ee_o.jpg", "flowers.jpeg", "gain-map.jpg"})
PHOTO_SHAPES = {
    "camera-12mp.jpg": (4032, 3024),  # a phone's 12 MP main camera
    "camera-5mp.png": (2592, 1944),  # a screenshot-like lossless upload of a photo
    "wallpaper-8mp.jpg": (3840, 2160),  # a 4K wallpaper
    "wallpaper-8mp.png": (3840, 2160),
}
GRAIN_SIGMA = 4  # grey levels of noise added to generated photos (see large_photo)


@dataclass(frozen=True)
class Input:
    path: Path
    name: str
    kind: str  # one of KINDS
    format: str  # libvips loader family: jpeg, png, webp, gif, tiff, heif, ...
    width: int
    height: int
    bytes: int
    photo: bool = False  # one of the photo set (CORPUS_PHOTOS, PHOTO_SHAPES)

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["megapixels"] = round(self.megapixels, 2)
        return d


def describe(path: Path) -> Input:
    """Header facts only (libvips reads no pixels here)."""
    import pyvips

    image = pyvips.Image.new_from_file(str(path), access="sequential")
    loader = str(image.get("vips-loader"))
    fmt = loader.removesuffix("load").removesuffix("_source").removesuffix("_file")
    fmt = {"magick": "other", "heif": "heif"}.get(fmt, fmt)
    if fmt == "heif" and "heif-compression" in image.get_fields():
        fmt = {"hevc": "heic", "av1": "avif"}.get(str(image.get("heif-compression")), fmt)
    pixels = image.width * image.height
    kind = (
        "heic"
        if fmt == "heic"
        else "large"
        if pixels >= LARGE_PIXELS
        else fmt
        if fmt in ("jpeg", "png")
        else "other"
    )
    return Input(
        path=path,
        name=path.name,
        kind=kind,
        format=fmt,
        width=image.width,
        height=image.height,
        bytes=path.stat().st_size,
        photo=path.name in CORPUS_PHOTOS or path.name in PHOTO_SHAPES,
    )


def corpus_inputs(folder: Path) -> list[Input]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no images in {folder}")
    return [describe(p) for p in files]


def _source(corpus: Path) -> Path:
    source = corpus / LARGE_SOURCE
    return source if source.exists() else DEFAULT_CORPUS / LARGE_SOURCE  # a custom corpus


def _make_photo(target: Path, corpus: Path, scale: float, crop: tuple[int, int] | None) -> Path:
    """Upscale the real photo by ``scale`` (then crop to ``crop``), add grain, save once."""
    import pyvips

    source = _source(corpus)
    image = pyvips.Image.new_from_file(str(source), access="sequential")
    log.info("making %s from %s, once", target.name, source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".part-{target.name}")
    big = image.resize(scale, kernel="lanczos3")
    if crop is not None:
        big = big.crop((big.width - crop[0]) // 2, (big.height - crop[1]) // 2, *crop)
    # A plain upscale is smoother than any camera photo (0.05 bytes per pixel against the
    # source's 0.14), and JPEG decoding time follows the bytes: a little sensor-like grain
    # brings the density back to the source's, so decoders do a photo's work.
    grain = pyvips.Image.gaussnoise(big.width, big.height, sigma=GRAIN_SIGMA, mean=0)
    photo = (big + grain).cast("uchar")
    if target.suffix == ".png":
        photo.pngsave(str(partial), keep="none")
    else:
        photo.jpegsave(str(partial), Q=85, keep="none")
    partial.rename(target)
    return target


def large_photo(megapixels: int, corpus: Path, cache: Path = CACHE_DIR) -> Path:
    """A JPEG of about ``megapixels`` MP, upscaled from a real photo; made once, then cached."""
    target = cache / f"photo-{megapixels}mp.jpg"
    if target.exists():
        return target
    import pyvips

    head = pyvips.Image.new_from_file(str(_source(corpus)), access="sequential")
    scale = math.sqrt(megapixels * 1e6 / (head.width * head.height))
    return _make_photo(target, corpus, scale, None)


def shaped_photo(name: str, corpus: Path, cache: Path = CACHE_DIR) -> Path:
    """One of PHOTO_SHAPES: exactly that width and height, made once, then cached."""
    target = cache / name
    if target.exists():
        return target
    import pyvips

    width, height = PHOTO_SHAPES[name]
    head = pyvips.Image.new_from_file(str(_source(corpus)), access="sequential")
    scale = max(width / head.width, height / head.height) * 1.001  # cover, then crop
    return _make_photo(target, corpus, scale, (width, height))


def photo_inputs(corpus: Path, cache: Path = CACHE_DIR) -> list[Input]:
    return [describe(shaped_photo(name, corpus, cache)) for name in PHOTO_SHAPES]


def large_inputs(sizes: list[int], corpus: Path, cache: Path = CACHE_DIR) -> list[Input]:
    return [describe(large_photo(mp, corpus, cache)) for mp in sizes]


def heic_photo(megapixels: int, corpus: Path, cache: Path = CACHE_DIR) -> Path:
    """The large photo of ``megapixels`` MP as a phone stores it: HEVC HEIC in 512 px grid
    tiles (one HEVC picture cannot exceed 35.6 MP, so a 48 MP photo is a grid), 4:2:0, q80.

    Encoded once with pillow-heif (x265, GPL: a dev dependency only, never shipped).
    """
    target = cache / f"photo-{megapixels}mp.heic"
    if target.exists():
        return target
    import pillow_heif
    import pyvips
    from PIL import Image

    jpeg = pyvips.Image.new_from_file(str(large_photo(megapixels, corpus, cache)))
    log.info("making %s (HEVC, 512 px tiles), once", target.name)
    pixels = Image.frombytes("RGB", (jpeg.width, jpeg.height), jpeg.write_to_memory())
    partial = target.with_name(f".part-{target.name}")
    pillow_heif.from_pillow(pixels).save(
        partial, format="HEIF", quality=80, tile_size=512, enc_params={"preset": "ultrafast"}
    )
    partial.rename(target)
    return target


def heic_inputs(sizes: list[int], corpus: Path, cache: Path = CACHE_DIR) -> list[Input]:
    return [describe(heic_photo(mp, corpus, cache)) for mp in sizes]
