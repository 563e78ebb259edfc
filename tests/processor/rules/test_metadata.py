"""Sniffing and metadata helpers: pure functions, no libvips."""

from __future__ import annotations

import struct

import pytest

from processor.core.formats import HEVC_BRANDS
from processor.core.keys import content_version, image_id, rendition_key
from processor.core.sniff import describe_unknown, detect_format
from processor.rules.metadata import blurhash, dominant_color, exif_datetime, icc_description

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a\x01\x00", "gif"),
        (b"II*\x00\x08\x00", "tiff"),
        (b"MM\x00*\x00\x00", "tiff"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00", "avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "heic"),
        # Every HEVC brand; a generic brand with a compatible AV1 brand is AVIF.
        *((b"\x00\x00\x00\x10ftyp" + b + b"\x00\x00\x00\x00", "heic") for b in sorted(HEVC_BRANDS)),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00heicmiaf", "heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", "avif"),
        (b"\x00\x00\x00\x18ftypmsf1\x00\x00\x00\x00avismsf1", "avif"),
        (b"\x00\x00\x00\x14ftypavis\x00\x00\x00\x00msf1", "avif"),
        # The box's own size bounds the compatible brands: "avif" after it is not a brand.
        (b"\x00\x00\x00\x10ftypmif1\x00\x00\x00\x00avif", "heic"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x14ftypjp2 ", None),
        (b"<?xml version", None),
        (b"%PDF-1.7", None),
        (b"\x08\xf2\xa6\xb6", None),
        (b"\x00\x00\x00\x18ftypisom", None),
        (b"", None),
    ],
)
def test_detect_format(head: bytes, fmt: str | None) -> None:
    assert detect_format(head) == fmt


def test_unknown_formats_are_named() -> None:
    assert describe_unknown(b"  <svg xmlns=") == "SVG"
    assert describe_unknown(b"\x00\x00\x00\x0cjP  \r\n") == "JPEG 2000"
    assert describe_unknown(b"%PDF-") == "PDF"


def _icc_with_desc(tag: bytes) -> bytes:
    header = bytearray(128)
    table = struct.pack(">I4sII", 1, b"desc", 144, len(tag))
    return bytes(header) + table + tag


def test_icc_v2_description() -> None:
    text = b"Display P3\x00"
    tag = b"desc" + b"\x00" * 4 + struct.pack(">I", len(text)) + text
    assert icc_description(_icc_with_desc(tag)) == "Display P3"


def test_icc_v4_mluc_description() -> None:
    text = "ProPhoto RGB".encode("utf-16-be")
    tag = b"mluc" + b"\x00" * 4 + struct.pack(">II", 1, 12) + b"enUS"
    tag += struct.pack(">II", len(text), 28) + text
    assert icc_description(_icc_with_desc(tag)) == "ProPhoto RGB"


def test_icc_garbage_is_none() -> None:
    assert icc_description(b"not a profile") is None


def test_exif_datetime() -> None:
    assert exif_datetime("2016:07:02 07:34:02 (2016:07:02 07:34:02, ASCII, 20 components)") == (
        "2016-07-02T07:34:02"
    )
    assert exif_datetime("0000:00:00 00:00:00") is None
    assert exif_datetime("garbage") is None
    assert exif_datetime(None) is None


def test_dominant_colour_prefers_the_largest_area() -> None:
    red, blue = bytes([200, 10, 10]), bytes([10, 10, 200])
    assert dominant_color(red * 70 + blue * 30) == "#c80a0a"


def _decode_dc(hash_: str) -> tuple[int, int, int]:
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
    value = 0
    for c in hash_[2:6]:
        value = value * 83 + chars.index(c)
    return value >> 16, (value >> 8) & 255, value & 255


def test_blurhash_shape_and_average_colour() -> None:
    w, h = 8, 6
    pixels = bytes([30, 120, 210]) * (w * h)
    result = blurhash(pixels, w, h)
    # 1 size char + 1 max char + 4 DC + 2 per AC component (4x3 - 1)
    assert len(result) == 6 + 2 * 11
    assert _decode_dc(result) == (30, 120, 210)


def test_ids_and_keys() -> None:
    a = image_id("bucket", "raw/cat.jpg")
    assert a == image_id("bucket", "raw/cat.jpg")
    assert a != image_id("bucket", "raw/cat2.jpg")
    assert len(a) == 26 and a.isalnum() and a.lower() == a
    v = content_version("ab" * 32, "cfg")
    assert v != content_version("ab" * 32, "cfg2")
    assert rendition_key("thumbs", a, "jpeg", v) == f"thumbs/{a}-{v}.jpg"
    assert rendition_key("thumbs", a, "webp") == f"thumbs/{a}.webp"
