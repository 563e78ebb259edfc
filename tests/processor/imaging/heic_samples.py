"""Real HEVC HEIC files, made at test time with pillow-heif (x265), and their independent decode.

pillow-heif encodes with x265, which is GPL: it is a dev/test dependency only, never a runtime
one and never in an image (docs/formats.md; tests/infra/test_handlers.py checks the images).
Its own libheif/libde265 build and Pillow (ImageCms for colour) are the independent decode the
engine's output is compared with, pixel by pixel.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pillow_heif
import pyvips
from PIL import Image, ImageCms

from tests.conftest import GOOD

# nclx for Display P3 (primaries 12, sRGB transfer 13, BT.601 matrix, full range).
NCLX_P3 = {
    "color_primaries": 12,
    "transfer_characteristics": 13,
    "matrix_coefficients": 6,
    "full_range_flag": 1,
}
CAPTURED = "2024:05:01 12:30:45"


def display_p3_icc() -> bytes:
    """The Display P3 profile of the corpus' p3.png."""
    return bytes(pyvips.Image.new_from_file(str(GOOD / "p3.png")).get("icc-profile-data"))


def pattern(width: int, height: int, alpha: bool = False) -> Image.Image:
    """Saturated gradients (where P3 and sRGB differ most) and a red marker at the top left."""
    mode = "RGBA" if alpha else "RGB"
    image = Image.new(mode, (width, height))
    px = image.load()
    assert px is not None
    for y in range(height):
        for x in range(width):
            r = 255 * x // max(1, width - 1)
            g = 255 * y // max(1, height - 1)
            b = 255 - (r + g) // 2
            value = (r, g, b, 255 if x < width // 2 else 96) if alpha else (r, g, b)
            px[x, y] = value
    marker = (255, 0, 0, 255) if alpha else (255, 0, 0)
    image.paste(marker, (0, 0, max(2, width // 4), max(2, height // 4)))
    return image


def exif_bytes(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = CAPTURED  # DateTimeOriginal
    return exif.tobytes()


def save(image: Image.Image, path: Path, **kwargs: object) -> Path:
    pillow_heif.from_pillow(image).save(path, quality=95, **kwargs)
    return path


def save_nclx(image: Image.Image, path: Path, nclx: dict[str, int]) -> Path:
    heif = pillow_heif.from_pillow(image)
    heif[0].info["nclx_profile"] = dict(nclx)
    heif.save(path, quality=95)
    return path


def save_10bit(width: int, height: int, path: Path) -> Path:
    """A 10-bit HEIC from 16-bit RGB samples (gradients)."""
    data = b"".join(
        struct.pack("<HHH", 65535 * x // (width - 1), 65535 * y // (height - 1), 40000)
        for y in range(height)
        for x in range(width)
    )
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(width, height), data=data)
    heif.save(path, quality=95)
    return path


def save_burst(path: Path) -> Path:
    """Two top-level images; the second (green, 80x40) is the primary."""
    heif = pillow_heif.HeifFile()
    heif.add_from_pillow(Image.new("RGB", (64, 48), (255, 0, 0)))
    heif.add_from_pillow(Image.new("RGB", (80, 40), (0, 200, 0)))
    heif.save(path, quality=95, primary_index=1)
    return path


def bomb(source: Path, path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A small HEIC whose header (ispe) claims ``width`` x ``height``."""
    data = bytearray(source.read_bytes())
    at = data.index(b"ispe") + 8  # box type, then version and flags
    data[at : at + 8] = struct.pack(">II", width, height)
    path.write_bytes(bytes(data))
    return path


def independent_decode(path: Path, icc_to_srgb: bytes | None = None) -> Image.Image:
    """pillow-heif's decode (upright, primary image), converted to sRGB by Pillow's ImageCms."""
    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=True)
    image = heif[heif.primary_index].to_pillow()
    if icc_to_srgb is not None:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_to_srgb))
        srgb = ImageCms.createProfile("sRGB")
        image = ImageCms.profileToProfile(
            image, source, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
        )
        assert image is not None
    return image
