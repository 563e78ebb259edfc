"""A TIFF's first image directory (IFD0), read from the bytes: the codec and sample layout that
decide whether this build can decode it, before libvips is asked.

libtiff (through libvips) refuses some of these with words that read like damage ("not
configured", "samples_per_pixel not a whole number of bytes"), or decodes them blank
(old-style JPEG in tiles: every pixel 0). ``refusal`` names what this build cannot decode,
so the answer is ``unsupported_format`` with the codec or layout named, never
``corrupt_image`` for a file that is fine.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# TIFF tags read here.
_BITS, _COMPRESSION, _PHOTOMETRIC = 258, 259, 262
_SAMPLES, _PLANAR, _TILE_WIDTH, _SAMPLE_FORMAT = 277, 284, 322, 339
_READ = frozenset(
    {_BITS, _COMPRESSION, _PHOTOMETRIC, _SAMPLES, _PLANAR, _TILE_WIDTH, _SAMPLE_FORMAT}
)

# Compression codes libtiff may lack, by name (TIFF 6.0 and the registered extensions).
COMPRESSIONS = {
    6: "old-style JPEG",
    34712: "JPEG 2000",
    34887: "LERC",
    34925: "LZMA",
    50000: "ZSTD",
    50001: "WebP",
    50002: "JPEG XL",
}
_PHOTOMETRIC_CIELAB = 8
# Sample sizes libvips' TIFF loader reads (not 64: "samples out of range", even for the
# double-precision TIFFs libvips itself writes).
_BITS_READ = frozenset({1, 2, 4, 8, 16, 32})
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 11: 4, 12: 8, 16: 8, 17: 8}
_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Ifd:
    compression: int
    photometric: int | None  # None: the tag is missing
    bits: tuple[int, ...]
    samples: int
    planar: int  # 1 interleaved, 2 separate planes
    tiled: bool
    sample_format: int  # 1 unsigned, 2 signed, 3 float


def read(path: Path) -> Ifd | None:
    """IFD0's facts, or None where the structure cannot be read (libvips then says why)."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
            order = {b"II": "<", b"MM": ">"}.get(head[:2])
            if order is None:
                return None
            (magic,) = struct.unpack(order + "H", head[2:4])
            if magic == 42:
                (offset,) = struct.unpack(order + "I", head[4:8])
                count_fmt, n_fmt, entry_size, value_size = "H", "I", 12, 4
            elif magic == 43:
                (offset,) = struct.unpack(order + "Q", head[8:16])
                count_fmt, n_fmt, entry_size, value_size = "Q", "Q", 20, 8
            else:
                return None
            f.seek(offset)
            count_size = struct.calcsize(count_fmt)
            (count,) = struct.unpack(order + count_fmt, f.read(count_size))
            if count > _MAX_ENTRIES:
                return None
            table = f.read(count * entry_size)
            tags: dict[int, tuple[int, ...]] = {}
            for i in range(count):
                entry = table[i * entry_size : (i + 1) * entry_size]
                tag, kind = struct.unpack(order + "HH", entry[:4])
                if tag not in _READ:
                    continue
                n_size = struct.calcsize(n_fmt)
                n = struct.unpack(order + n_fmt, entry[4 : 4 + n_size])[0]
                size = _TYPE_SIZES[kind] if kind in _TYPE_SIZES else 0
                if kind not in (3, 4, 16) or n == 0 or n > 64:
                    tags[tag] = ()
                    continue
                code = {3: "H", 4: "I", 16: "Q"}[kind]
                raw = entry[4 + n_size :]
                if n * size > value_size:
                    (where,) = struct.unpack(order + ("I" if value_size == 4 else "Q"), raw)
                    back = f.tell()
                    f.seek(where)
                    raw = f.read(n * size)
                    f.seek(back)
                tags[tag] = struct.unpack(order + code * n, raw[: n * size])
    except (OSError, struct.error):
        return None

    def first(tag: int, default: int) -> int:
        values = tags.get(tag)
        return values[0] if values else default

    samples = first(_SAMPLES, 1)
    return Ifd(
        compression=first(_COMPRESSION, 1),
        photometric=tags[_PHOTOMETRIC][0] if tags.get(_PHOTOMETRIC) else None,
        bits=tags.get(_BITS) or (1,),
        samples=samples,
        planar=first(_PLANAR, 1),
        tiled=_TILE_WIDTH in tags,
        sample_format=first(_SAMPLE_FORMAT, 1),
    )


def refusal(ifd: Ifd) -> str | None:
    """What this build cannot decode in this TIFF, named; None where it can."""
    if ifd.compression == 6:
        # libtiff's old-style JPEG support is not built in: strips are refused, tiles
        # decode to all-zero pixels.
        return "old-style JPEG compression (TIFF compression 6)"
    if ifd.photometric is None:
        return "no PhotometricInterpretation tag"
    odd = sorted({b for b in ifd.bits if b not in _BITS_READ})
    if odd:
        return f"{odd[0]}-bit samples"
    if ifd.tiled and ifd.planar == 2 and ifd.samples > 1:
        return "separate colour planes in tiles (PlanarConfiguration 2)"
    if ifd.photometric == _PHOTOMETRIC_CIELAB and max(ifd.bits) == 8:
        return "8-bit CIELAB samples"
    return None


def missing_codec(detail: str) -> str | None:
    """The codec in libtiff's "<name> compression support is not configured", named."""
    marker = " compression support is not configured"
    if marker not in detail:
        return None
    before = detail.split(marker, 1)[0]
    name = before.rsplit(":", 1)[-1].rsplit(";", 1)[-1].strip()
    return f"{name} compression" if name else "a compression this build lacks"
