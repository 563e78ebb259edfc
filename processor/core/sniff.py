"""Format detection from the first bytes of an upload. Never from a name or Content-Type."""

from __future__ import annotations

# How many leading bytes `detect_format` needs.
SNIFF_BYTES = 32

# ISO-BMFF brands of HEIF still images and AVIF (not JPEG 2000's "jp2 ", not video "isom").
_HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"hevx",
    b"heim",
    b"heis",
    b"mif1",
    b"msf1",
    b"avif",
    b"avis",
}


def detect_format(head: bytes) -> str | None:
    """The accepted format these bytes start with, or None for anything else.

    Returns one of: jpeg, png, webp, gif, tiff, heif.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


def describe_unknown(head: bytes) -> str:
    """A short, human name for a refused format, for the error message."""
    stripped = head.lstrip()
    if stripped.startswith((b"<?xml", b"<svg")):
        return "SVG"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG 2000"
    if head.startswith(b"\x08\xf2\xa6\xb6") or head.startswith(b"\xb6\xa6\xf2\x08"):
        return "libvips' own format"
    if head.startswith(b"BM"):
        return "BMP"
    if not head:
        return "empty data"
    return "an unrecognised format"
