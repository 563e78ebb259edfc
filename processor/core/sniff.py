"""Format detection from the first bytes of an upload. Never from a name or Content-Type.

The formats, their magic bytes and ISO-BMFF brands come from processor/core/formats.py.
"""

from __future__ import annotations

import struct

from processor.core.formats import (
    AV1_BRANDS,
    FORMATS,
    GENERIC_HEIF_BRANDS,
    HEVC_BRANDS,
    REFUSED_MAGIC,
)

# How many leading bytes `detect_format` needs: enough for an ftyp box's compatible brands.
SNIFF_BYTES = 64


def ftyp_brands(head: bytes) -> tuple[bytes, list[bytes]] | None:
    """(major, compatible brands) of an ISO-BMFF ``ftyp`` box at the start, or None."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    (size,) = struct.unpack_from(">I", head, 0)
    end = min(max(size, 16), len(head))
    compatible = [head[i : i + 4] for i in range(16, end - 3, 4)]
    return head[8:12], compatible


def _heif_family(head: bytes) -> str | None:
    """'heic' or 'avif' from the brands; a generic HEIF brand alone counts as HEIC (the engine
    then reads the primary image's codec from the header and routes by it)."""
    brands = ftyp_brands(head)
    if brands is None:
        return None
    major, compatible = brands
    if major in AV1_BRANDS:
        return "avif"
    if major in HEVC_BRANDS:
        return "heic"
    if major not in GENERIC_HEIF_BRANDS:
        return None  # video (isom, mp42), JPEG 2000 (jp2), ...: not an image we accept
    if any(b in AV1_BRANDS for b in compatible):
        return "avif"
    return "heic"


def detect_format(head: bytes) -> str | None:
    """The name (formats.FORMATS) of the known format these bytes start with, or None."""
    for fmt in FORMATS:
        for signature in fmt.magic:
            if all(head[off : off + len(m)] == m for off, m in signature):
                return fmt.name
    return _heif_family(head)


def describe_unknown(head: bytes) -> str:
    """A short, human name for a refused format, for the error message."""
    stripped = head.lstrip()
    if stripped.startswith((b"<?xml", b"<svg")):
        return "SVG"
    for label, prefixes in REFUSED_MAGIC:
        if head.startswith(prefixes):
            return label
    if not head:
        return "empty data"
    brands = ftyp_brands(head)
    if brands is not None and brands[0] == b"mif3":
        # HEIF's low-overhead form (a 'mini' box, no 'meta'): libheif reads it, libvips not.
        return "HEIF in its low-overhead form (brand mif3)"
    return "an unrecognised format"
