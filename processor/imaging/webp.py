"""WebP encoding through the fastest libwebp at hand that gives the same bytes.

libvips and Pillow both wrap libwebp 1.6.0, and at the same settings (quality, method, no
metadata) they write byte-identical files: checked on every good corpus image, RGB and RGBA,
by tests/processor/imaging/test_webp.py. Pillow's wheel builds libwebp with its SIMD paths,
and encodes the same pixels with about 0.9x the CPU of pyvips-binary's (``make bench``,
section "WebP encoder"). Both release the GIL, so the engine's concurrent encodes still use both
cores.

This module never imports pyvips: the engine hands it 8-bit interleaved pixels. Pillow is
imported on first use, not at import (about 30 ms).
"""

from __future__ import annotations

import io
from typing import Any

from processor.imaging.pillow import image_module

_MODES = {3: "RGB", 4: "RGBA"}


def _pillow() -> Any | None:
    """Pillow's Image module when its WebP codec is there; None sends WebP to libvips."""
    return image_module("webp")


def available(bands: int) -> bool:
    """Whether ``encode`` takes an image of ``bands`` 8-bit bands."""
    return bands in _MODES and _pillow() is not None


def encode(
    pixels: bytes, width: int, height: int, bands: int, *, quality: int, effort: int
) -> bytes:
    """Lossy WebP of 8-bit interleaved ``pixels``, as libvips' ``webpsave(Q=quality,
    effort=effort, keep="none")`` writes it: no EXIF, XMP or ICC chunk."""
    image_module = _pillow()
    if image_module is None or bands not in _MODES:
        raise ValueError(f"no Pillow WebP encoder for {bands} bands")
    mode = _MODES[bands]
    # frombuffer shares the pixels rather than copying them.
    image = image_module.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1)
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality, method=effort, lossless=False)
    return out.getvalue()
