"""HEVC-coded HEIF (what phones save): the primary image's pixels, from pi-heif.

libvips (pyvips-binary) reads a HEIC's header but has no HEVC decoder. pi-heif is the
BSD-3-licensed binding of libheif and libde265 (both LGPL-3.0, shipped as shared libraries in
its wheel), decoders only: no x265 or other GPL encoder (docs/formats.md).

libheif applies the container's ``irot``/``imir`` transforms while decoding, so the pixels
come out upright; nothing may rotate them again from the EXIF orientation tag. Only the
primary image is decoded: thumbnails, depth maps and auxiliary images are never listed, and
other top-level images (bursts) are skipped. No pyvips here: the engine wraps the pixels.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from processor.core.errors import CorruptImage, UnsupportedFormat
from processor.core.formats import BY_NAME, not_decodable, not_decodable_feature

_lock = threading.Lock()
_module: ModuleType | None = None


@dataclass(frozen=True)
class HeicPixels:
    width: int  # upright: after irot/imir
    height: int
    bands: int  # 3, or 4 with alpha; greyscale: 1, or 2 with alpha
    premultiplied: bool
    data: Any  # a buffer of height x width x bands samples
    bit_depth: int  # as coded: 8, 10 or 12 (colour pixels are 8-bit here, see _LAYOUTS)
    icc: bytes | None
    nclx: dict[str, Any] | None
    # `data` is a view of libheif's own buffer, freed with the image that owns it: whoever
    # reads `data` must keep this (the pi-heif file) alive until it has copied the pixels.
    owner: Any = None
    band_format: str = "uchar"  # libvips' name: "uchar", or "ushort" for deep greyscale


# pi-heif's modes: (bands, libvips band format). Colour is converted to 8 bits by libheif;
# 10- and 12-bit greyscale comes as 16-bit samples (scaled to the whole 16-bit range).
_LAYOUTS = {
    "RGB": (3, "uchar"),
    "RGBA": (4, "uchar"),
    "RGBa": (4, "uchar"),
    "L": (1, "uchar"),
    "LA": (2, "uchar"),
    "I;16": (1, "ushort"),
    "I;16L": (1, "ushort"),
}


def _pi_heif() -> ModuleType:
    """Imported on the first HEIC only: no cost to a cold start that never sees one."""
    global _module
    with _lock:
        if _module is None:
            try:
                import pi_heif
            except ImportError as e:  # a build without it: refuse honestly, naming the codec
                raise UnsupportedFormat(not_decodable(BY_NAME["heic"])) from e
            # Never list (or decode) what is not the primary image.
            pi_heif.options.THUMBNAILS = False
            pi_heif.options.DEPTH_IMAGES = False
            pi_heif.options.AUX_IMAGES = False
            # libheif decodes a grid's tiles in parallel; more threads than cores only
            # add memory (one tile buffer each).
            pi_heif.options.DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))
            _module = pi_heif
        return _module


def _message(e: Exception) -> str:
    """libheif's own words, on one line, without repeats (it never names our file)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text.rstrip(".")


def decode_primary(path: Path) -> HeicPixels:
    """Decode the primary image once, upright, as 8-bit RGB(A). Limits are checked before."""
    pi_heif = _pi_heif()
    try:
        # 10- and 12-bit images are converted to 8 bits by libheif while decoding: half the
        # memory of 16-bit samples, and every output is 8-bit anyway.
        heif = pi_heif.open_heif(path, convert_hdr_to_8bit=True)
        primary = heif[heif.primary_index]
        info = primary.info
        data = primary.data  # the one decode
        width, height = primary.size
        mode = primary.mode
    except (ValueError, EOFError, SyntaxError, RuntimeError, OSError) as e:
        text = _message(e)
        if "Unsupported codec" in text or "not been built in" in text:
            raise UnsupportedFormat(not_decodable(BY_NAME["heic"])) from e
        if "Security limit exceeded" in text or "Unsupported feature" in text:
            # A valid file past what libheif opens (item counts) or a kind it lacks: named.
            feature = text.split(":")[-1].strip()
            raise UnsupportedFormat(not_decodable_feature(BY_NAME["heic"], feature)) from e
        raise CorruptImage(f"the HEIC image data cannot be decoded: {text}") from e
    if mode not in _LAYOUTS:
        raise UnsupportedFormat(
            f"HEIC images whose pixels decode as {mode} are not supported by this build"
        )
    bands, band_format = _LAYOUTS[mode]
    if len(data) != width * height * bands * (2 if band_format == "ushort" else 1):
        raise CorruptImage("the HEIC image decoded to fewer pixels than its header declares")
    return HeicPixels(
        width=width,
        height=height,
        bands=bands,
        premultiplied=mode == "RGBa",
        data=data,
        bit_depth=int(info.get("bit_depth", 8)),
        icc=info.get("icc_profile") or None,
        nclx=info.get("nclx_profile") or None,
        owner=heif,
        band_format=band_format,
    )
