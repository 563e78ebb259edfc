"""AVIF image sequences (``avis``): frame count and delays from the track's boxes alone.

The frames are decoded by libavif (through Pillow, processor/imaging/avis.py), which gives a
frame's duration only when it decodes that frame; the limits on an animation are checked
before any pixel, so the delays are read here from the ISO-BMFF boxes: the first track whose
handler is ``pict``, its media timescale (``mdhd``) and its decoding times (``stts``). Pure:
no pixels decoded here. ISO/IEC 14496-12 (the boxes), AVIF 1.1 section 7 (sequences).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path


class AvisError(ValueError):
    """The boxes do not describe a readable image sequence."""


@dataclass(frozen=True)
class Sequence:
    delays_ms: tuple[int, ...]  # one per frame, rounded to ms

    @property
    def frames(self) -> int:
        return len(self.delays_ms)


def read(path: Path, max_frames: int) -> Sequence | None:
    """The sequence's delays, or None when the file has no image track. More than
    ``max_frames`` frames raise AvisError before their delays are listed."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        moov = _find(m, 0, len(m), b"moov")
        if moov is None:
            return None
        for trak in _boxes(m, *moov, b"trak"):
            mdia = _find(m, *trak, b"mdia")
            if mdia is None or _handler(m, mdia) != b"pict":
                continue
            timescale = _timescale(m, mdia)
            stts = _path(m, mdia, (b"minf", b"stbl", b"stts"))
            if stts is None:
                raise AvisError("the image track has no decoding times (stts)")
            return Sequence(_delays(m, stts, timescale, max_frames))
    return None


def _boxes(m: mmap.mmap, start: int, end: int, kind: bytes) -> list[tuple[int, int]]:
    """(content start, content end) of every box of ``kind`` directly inside [start, end)."""
    found = []
    pos = start
    while pos + 8 <= end:
        size, box = struct.unpack_from(">I4s", m, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            (size,) = struct.unpack_from(">Q", m, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise AvisError(f"the {box.decode('latin-1')} box runs past its parent")
        if box == kind:
            found.append((pos + header, pos + size))
        pos += size
    return found


def _find(m: mmap.mmap, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    boxes = _boxes(m, start, end, kind)
    return boxes[0] if boxes else None


def _path(m: mmap.mmap, box: tuple[int, int], kinds: tuple[bytes, ...]) -> tuple[int, int] | None:
    for kind in kinds:
        found = _find(m, *box, kind)
        if found is None:
            return None
        box = found
    return box


def _handler(m: mmap.mmap, mdia: tuple[int, int]) -> bytes | None:
    hdlr = _find(m, *mdia, b"hdlr")
    if hdlr is None or hdlr[1] - hdlr[0] < 12:
        return None
    return bytes(m[hdlr[0] + 8 : hdlr[0] + 12])  # after version/flags and pre_defined


def _timescale(m: mmap.mmap, mdia: tuple[int, int]) -> int:
    mdhd = _find(m, *mdia, b"mdhd")
    if mdhd is None:
        raise AvisError("the image track has no media header (mdhd)")
    version = m[mdhd[0]]
    offset = mdhd[0] + (20 if version == 1 else 12)  # past version/flags and the two times
    if offset + 4 > mdhd[1]:
        raise AvisError("the media header is cut short")
    (timescale,) = struct.unpack_from(">I", m, offset)
    if timescale == 0:
        raise AvisError("the image track's timescale is 0")
    return int(timescale)


def _delays(
    m: mmap.mmap, stts: tuple[int, int], timescale: int, max_frames: int
) -> tuple[int, ...]:
    start, end = stts
    if start + 8 > end:
        raise AvisError("the decoding times are cut short")
    (entries,) = struct.unpack_from(">I", m, start + 4)
    if start + 8 + 8 * entries > end:
        raise AvisError("the decoding times run past their box")
    total = 0
    delays: list[int] = []
    for i in range(entries):
        count, delta = struct.unpack_from(">II", m, start + 8 + 8 * i)
        total += count
        if total > max_frames:
            raise AvisError(f"more than {max_frames:,} frames")
        delays += [round(1000 * delta / timescale)] * count
    return tuple(delays)
