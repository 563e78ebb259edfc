"""CMYK to sRGB through LittleCMS transforms that are built once per profile and kept.

libvips converts CMYK with LittleCMS too, but builds the transform again for every image:
for a print profile (a large CMYK lookup table, such as U.S. Web Coated SWOP, or libvips'
own fallback profile for untagged CMYK) that costs about 30 ms, even when the image is a
thumbnail (``make bench``: 500x333 CMYK JPEGs took twice Pillow's CPU). Through Pillow's
ImageCms the transform is built on the first image with a given profile and reused after.

The transform is the one libvips' ``thumbnail(export_profile="srgb")`` makes: relative
colorimetric intent, no black point compensation (measured on the corpus' CMYK JPEGs: within
one level of libvips' pixels with the embedded SWOP profile, mean 0.2 levels with the
fallback). This module never imports pyvips: the engine hands it 8-bit CMYK pixels.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import pyvips


@functools.cache
def _image_cms() -> tuple[Any, Any] | None:
    """Pillow's Image and ImageCms modules; None when Pillow (or its LittleCMS) is missing."""
    try:
        from PIL import Image, ImageCms
    except ImportError:
        return None
    return Image, ImageCms


def available() -> bool:
    return _image_cms() is not None


@functools.lru_cache(maxsize=8)
def _transform(profile: bytes) -> Any:
    modules = _image_cms()
    assert modules is not None
    _, cms = modules
    return cms.buildTransform(
        cms.ImageCmsProfile(io.BytesIO(profile)),
        cms.createProfile("sRGB"),
        "CMYK",
        "RGB",
        renderingIntent=cms.Intent.RELATIVE_COLORIMETRIC,
    )


def cmyk_to_srgb(pixels: Any, width: int, height: int, profile: bytes) -> bytes:
    """Interleaved 8-bit CMYK ``pixels`` (ink, not inverted) to interleaved 8-bit sRGB, through
    ``profile`` (an ICC CMYK profile). Raises ValueError when the profile cannot be used."""
    modules = _image_cms()
    if modules is None:
        raise ValueError("no LittleCMS through Pillow")
    image_module, cms = modules
    try:
        transform = _transform(profile)
    except (cms.PyCMSError, OSError) as e:
        raise ValueError(f"the CMYK profile cannot be used: {e}") from e
    # frombuffer shares the pixels (CMYK is one of Pillow's 4-byte layouts).
    cmyk = image_module.frombuffer("CMYK", (width, height), pixels, "raw", "CMYK", 0, 1)
    rgb: bytes = cms.applyTransform(cmyk, transform).tobytes()
    return rgb


def primaries_to_srgb(image: pyvips.Image, matrix: Any) -> pyvips.Image:
    """nclx-described colour (Display P3, BT.2020) to sRGB: in linear light, a 3x3 matrix."""
    alpha = image.extract_band(3) if image.bands == 4 else None
    rgb = image.extract_band(0, n=3) if image.bands == 4 else image
    linear = rgb.copy(interpretation="srgb").colourspace("scrgb")
    mixed = linear.recomb([list(row) for row in matrix]).copy(interpretation="scrgb")
    out = mixed.colourspace("srgb")
    return out.bandjoin(alpha) if alpha is not None else out
