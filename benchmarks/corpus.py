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
KINDS = ("jpeg", "png", "other", "large")
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
    pixels = image.width * image.height
    kind = "large" if pixels >= LARGE_PIXELS else fmt if fmt in ("jpeg", "png") else "other"
    return Input(
        path=path,
        name=path.name,
        kind=kind,
        format=fmt,
        width=image.width,
        height=image.height,
        bytes=path.stat().st_size,
    )


def corpus_inputs(folder: Path) -> list[Input]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"no images in {folder}")
    return [describe(p) for p in files]


def large_photo(megapixels: int, corpus: Path, cache: Path = CACHE_DIR) -> Path:
    """A JPEG of about ``megapixels`` MP, upscaled from a real photo; made once, then cached."""
    target = cache / f"photo-{megapixels}mp.jpg"
    if target.exists():
        return target
    source = corpus / LARGE_SOURCE
    if not source.exists():  # a custom corpus: fall back on the shared one
        source = DEFAULT_CORPUS / LARGE_SOURCE
    import pyvips

    image = pyvips.Image.new_from_file(str(source), access="sequential")
    scale = math.sqrt(megapixels * 1e6 / (image.width * image.height))
    log.info("making %s (%d MP) from %s, once", target.name, megapixels, source.name)
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part.jpg")
    big = image.resize(scale, kernel="lanczos3")
    # A plain upscale is smoother than any camera photo (0.05 bytes per pixel against the
    # source's 0.14), and JPEG decoding time follows the bytes: a little sensor-like grain
    # brings the density back to the source's, so decoders do a photo's work.
    grain = pyvips.Image.gaussnoise(big.width, big.height, sigma=GRAIN_SIGMA, mean=0)
    (big + grain).cast("uchar").jpegsave(str(partial), Q=85, keep="none")
    partial.rename(target)
    return target


def large_inputs(sizes: list[int], corpus: Path, cache: Path = CACHE_DIR) -> list[Input]:
    return [describe(large_photo(mp, corpus, cache)) for mp in sizes]
