"""Pillow, in the style of AWS's S3-trigger thumbnail tutorial, but done well.

The tutorial opens the upload, calls ``thumbnail`` and saves. Done well means: ``draft()`` so
that libjpeg decodes JPEGs already shrunk by 2, 4 or 8 (Pillow's shrink-on-load), one decode
for both renditions, EXIF orientation applied, colour converted to sRGB through the embedded
ICC profile (cached transforms), the thumbnail made from the already-reduced optimized image,
and no metadata in the outputs.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from time import perf_counter

import pillow_heif
from PIL import Image, ImageCms, ImageOps

from benchmarks.rendered import Rendered, Stages, webp_effort

# Largest first: each rendition is made from the one before it.
BOXES = (("optimized", 2048), ("thumb", 320))
JPEG_QUALITY = 82
WEBP_QUALITY = 80
PNG_COMPRESSION = 6  # zlib level, as libvips' default
RESAMPLE = Image.Resampling.LANCZOS  # what libvips' thumbnail uses

Image.MAX_IMAGE_PIXELS = 300_000_000  # the project's pixel limit; giant-image.jpg is 280 MP
# HEIC as a Pillow user decodes it: pillow-heif's opener (a dev dependency, benchmarks only).
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
_SRGB = ImageCms.createProfile("sRGB")


def process(path: Path) -> tuple[list[Rendered], Stages]:
    t0 = perf_counter()
    with Image.open(path) as src:
        if src.format == "JPEG":
            # Ask libjpeg for the smallest 1/2, 1/4 or 1/8 scale still covering the box.
            src.draft(None, (BOXES[0][1], BOXES[0][1]))
        src.load()
        image = _normalise_mode(src)
    ImageOps.exif_transpose(image, in_place=True)
    t1 = perf_counter()

    alpha = image.mode in ("RGBA", "LA")
    made: list[tuple[str, Image.Image]] = []
    current = image
    for name, box in BOXES:
        if current is not image or current.width > box or current.height > box:
            current = current.copy() if made else current
            current.thumbnail((box, box), RESAMPLE)
        if not made:
            current = _to_srgb(current, alpha)
        made.append((name, current))
    t2 = perf_counter()

    renditions = [r for name, im in made for r in _encode(name, im, alpha)]
    t3 = perf_counter()
    stages = {"decode": (t1 - t0) * 1e3, "resize": (t2 - t1) * 1e3, "encode": (t3 - t2) * 1e3}
    return renditions, stages


def _normalise_mode(src: Image.Image) -> Image.Image:
    """A mode that Pillow can resize: L, LA, RGB, RGBA, CMYK or LAB (ICC kept in ``info``)."""
    icc = src.info.get("icc_profile")
    mode = src.mode
    if mode in ("L", "RGB", "RGBA", "LA", "CMYK", "LAB"):
        image = src if "transparency" not in src.info else src.convert("RGBA")
    elif mode.startswith("I;16") or mode in ("I", "F"):
        image = src.convert("I").point(lambda v: v / 256).convert("L")  # 16-bit -> 8-bit
    elif mode in ("P", "PA", "1", "YCbCr", "La", "RGBa", "RGBX"):
        has_alpha = mode in ("PA", "La", "RGBa") or "transparency" in src.info
        image = src.convert("RGBA" if has_alpha else "RGB")
    else:
        image = src.convert("RGB")
    if image is src:
        image = src.copy()  # leave the file-backed image so it can close
    image.info = {"icc_profile": icc} if icc else {}
    return image


@lru_cache(maxsize=32)
def _transform(icc: bytes | None, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source = (
        ImageCms.createProfile("LAB") if icc is None else ImageCms.ImageCmsProfile(io.BytesIO(icc))
    )
    return ImageCms.buildTransform(source, _SRGB, in_mode, out_mode)


def _to_srgb(image: Image.Image, alpha: bool) -> Image.Image:
    icc = image.info.get("icc_profile")
    out_mode = "RGBA" if alpha else ("L" if image.mode == "L" else "RGB")
    if image.mode == "LAB" or (icc and not _is_srgb(icc) and image.mode != "L"):
        target = "RGBA" if alpha else "RGB"
        try:
            converted = ImageCms.applyTransform(image, _transform(icc, image.mode, target))
            image = converted if converted is not None else image.convert(target)
        except (ImageCms.PyCMSError, OSError):
            image = image.convert(target)  # a broken profile: plain conversion
    elif image.mode != out_mode:
        image = image.convert(out_mode)
    image.info = {}  # strip EXIF, XMP, ICC: PNG would otherwise copy ``info`` through
    return image


@lru_cache(maxsize=32)
def _is_srgb(icc: bytes) -> bool:
    """Profiles that describe sRGB need no transform (cached: parsing one costs ~0.1 ms)."""
    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError):
        return True  # unreadable: treat as sRGB rather than fail
    return "sRGB" in description


def _encode(name: str, image: Image.Image, alpha: bool) -> list[Rendered]:
    out: list[Rendered] = []
    for fmt in ("png" if alpha else "jpeg", "webp"):
        buf = io.BytesIO()
        if fmt == "jpeg":
            image.save(buf, "JPEG", quality=JPEG_QUALITY)
        elif fmt == "png":
            image.save(buf, "PNG", compress_level=PNG_COMPRESSION)
        else:
            image.save(buf, "WEBP", quality=WEBP_QUALITY, method=webp_effort())
        out.append(Rendered(name, fmt, image.width, image.height, buf.tell()))
    return out
