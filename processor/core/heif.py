"""HEIF facts from the boxes alone, for files libheif refuses to open: the image's size
(``ispe``) and whether it is an image sequence with no still. Pure: no pixel decoded here.
ISO/IEC 23008-12 (HEIF), ISO/IEC 14496-12 (the boxes).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from processor.core import avis

# Brands of HEIF image sequences (a track of frames, no still image item needed).
SEQUENCE_BRANDS = frozenset({b"msf1", b"hevs", b"hevc", b"avcs"})


def _properties(m: mmap.mmap) -> tuple[int, int] | None:
    """The item property container (meta/iprp/ipco); meta is a FullBox (4 bytes first)."""
    meta = avis._find(m, 0, len(m), b"meta")
    if meta is None:
        return None
    return avis._path(m, (meta[0] + 4, meta[1]), (b"iprp", b"ipco"))


def largest_size(path: Path) -> tuple[int, int] | None:
    """The largest ``ispe`` (image spatial extents) among the item properties: a grid's own
    extents, where the image is made of tiles. None where there is none."""
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            ipco = _properties(m)
            if ipco is None:
                return None
            sizes = [
                struct.unpack_from(">II", m, start + 4)
                for start, end in avis._boxes(m, *ipco, b"ispe")
                if end - start >= 12
            ]
    except (OSError, ValueError, struct.error):
        return None
    if not sizes:
        return None
    width, height = max(sizes, key=lambda s: s[0] * s[1])
    return int(width), int(height)


def nclx(path: Path) -> dict[str, int] | None:
    """The first ``colr`` box of type ``nclx`` among the item properties (ISO/IEC 23091-2 code
    points), as libheif names them; None where the file has none."""
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            ipco = _properties(m)
            if ipco is None:
                return None
            for start, end in avis._boxes(m, *ipco, b"colr"):
                if end - start >= 11 and m[start : start + 4] == b"nclx":
                    primaries, transfer, matrix = struct.unpack_from(">HHH", m, start + 4)
                    return {
                        "color_primaries": primaries,
                        "transfer_characteristics": transfer,
                        "matrix_coefficients": matrix,
                        "full_range_flag": m[start + 10] >> 7,
                    }
    except (OSError, ValueError, struct.error):
        return None
    return None
