"""APNG: its animation read from the chunks alone, and each frame rebuilt as a plain PNG.

libvips' PNG loader shows the default image (IDAT) only, and Pillow's APNG reader composes
frames that follow a "dispose to previous" frame wrongly when each frame is read in turn. So
the engine composes APNG frames itself (processor/imaging/apng.py): this module finds every
frame's control chunk (``fcTL``: rectangle, delay, dispose and blend operations) and data
(``IDAT`` or ``fdAT``) without inflating anything, and rebuilds a frame as a PNG that any PNG
decoder reads. Pure: no pixels decoded here.

The APNG specification: https://wiki.mozilla.org/APNG_Specification (also in PNG 3rd edition).
"""

from __future__ import annotations

import mmap
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks the frames share, copied into each rebuilt frame (palette, transparency, colour).
_SHARED = frozenset({b"PLTE", b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"sBIT", b"cICP"})

DISPOSE_NONE, DISPOSE_BACKGROUND, DISPOSE_PREVIOUS = 0, 1, 2
BLEND_SOURCE, BLEND_OVER = 0, 1


class ApngError(ValueError):
    """The animation chunks contradict each other or the specification."""


class TooMany(ValueError):
    def __init__(self, frames: int) -> None:
        super().__init__(f"more than {frames:,} frames")
        self.frames = frames


@dataclass(frozen=True)
class Frame:
    x: int  # the frame's rectangle on the canvas
    y: int
    width: int
    height: int
    delay_ms: int  # as stored (delay_num / delay_den seconds; a 0 denominator means 1/100)
    dispose: int  # what becomes of the rectangle after the frame is shown
    blend: int  # how the frame's pixels meet the canvas
    data: tuple[tuple[int, int], ...]  # (offset, length) of its zlib data in the file


@dataclass(frozen=True)
class Animation:
    width: int  # the canvas
    height: int
    loop: int  # acTL num_plays: plays, 0 = forever
    frames: tuple[Frame, ...]
    ihdr: bytes  # the 13 bytes of IHDR's data
    shared: tuple[tuple[bytes, bytes], ...]  # (type, data) of the chunks every frame needs

    @property
    def clears(self) -> bool:
        """Some frame shows transparent canvas even when every pixel of the data is opaque:
        the first frame does not cover the canvas, or a frame is disposed of by clearing."""
        first = self.frames[0]
        return (first.x, first.y, first.width, first.height) != (
            0,
            0,
            self.width,
            self.height,
        ) or any(
            f.dispose == DISPOSE_BACKGROUND or (i == 0 and f.dispose == DISPOSE_PREVIOUS)
            for i, f in enumerate(self.frames[:-1])
        )


def read(path: Path, max_frames: int) -> Animation | None:
    """The animation of an APNG, or None for a plain PNG (no acTL before the image data).

    Raises ApngError for contradictory chunks, and ``TooMany`` (a ValueError carrying the
    count seen) past ``max_frames`` frames, before reading further."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return _read(m, max_frames)


def _read(m: mmap.mmap, max_frames: int) -> Animation | None:
    if m[:8] != SIGNATURE:
        raise ApngError("not a PNG")
    pos, size = 8, len(m)
    ihdr = b""
    declared = loop = 0
    shared: list[tuple[bytes, bytes]] = []
    frames: list[Frame] = []
    control: tuple[int, ...] | None = None  # the fcTL whose data is being collected
    data: list[tuple[int, int]] = []
    seen_image = False

    def close() -> None:
        nonlocal control, data
        if control is not None:
            if not data:
                raise ApngError("a frame control chunk has no image data")
            frames.append(_frame(control, data))
        control, data = None, []

    while pos + 8 <= size:
        length, kind = struct.unpack_from(">I4s", m, pos)
        start = pos + 8
        end = start + length
        if kind == b"IDAT" and not declared:
            return None  # a plain PNG: no animation control before the image data
        if end + 4 > size:
            raise ApngError(f"the {kind.decode('latin-1')} chunk runs past the end of the file")
        if kind == b"IHDR":
            ihdr = bytes(m[start:end])
        elif kind == b"acTL":
            if seen_image:
                return None  # an acTL after the image data does not make an animation
            declared, loop = struct.unpack_from(">II", m, start)
            if declared > max_frames:
                raise TooMany(max_frames)
        elif kind in _SHARED and not seen_image:
            shared.append((kind, bytes(m[start:end])))
        elif kind == b"IDAT":
            seen_image = True
            if control is not None and not frames:  # the default image is the first frame
                data.append((start, length))
        elif kind == b"fcTL":
            close()
            if len(frames) >= max_frames:
                raise TooMany(max_frames)
            control = struct.unpack_from(">IIIIIHHBB", m, start)
        elif kind == b"fdAT":
            if control is None:
                raise ApngError("frame data without a frame control chunk")
            data.append((start + 4, length - 4))  # after its sequence number
        elif kind == b"IEND":
            break
        pos = end + 4
    close()
    if not declared:
        return None
    if not frames:
        raise ApngError("an animation control chunk but no frame")
    width, height = struct.unpack_from(">II", ihdr, 0)
    for frame in frames:
        if frame.x + frame.width > width or frame.y + frame.height > height:
            raise ApngError("a frame lies outside the canvas")
    return Animation(width, height, loop, tuple(frames), ihdr, tuple(shared))


def _frame(control: tuple[int, ...], data: list[tuple[int, int]]) -> Frame:
    _seq, width, height, x, y, num, den, dispose, blend = control
    if width == 0 or height == 0 or dispose > 2 or blend > 1:
        raise ApngError("a frame control chunk is out of range")
    return Frame(
        x=x,
        y=y,
        width=width,
        height=height,
        delay_ms=round(1000 * num / (den or 100)),
        dispose=dispose,
        blend=blend,
        data=tuple(data),
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def frame_png(animation: Animation, frame: Frame, source: bytes | mmap.mmap) -> bytes:
    """One frame as a plain PNG: the animation's header at the frame's size, its shared
    chunks, and the frame's data as IDAT."""
    ihdr = struct.pack(">II", frame.width, frame.height) + animation.ihdr[8:]
    parts = [SIGNATURE, _chunk(b"IHDR", ihdr)]
    parts += [_chunk(kind, data) for kind, data in animation.shared]
    parts += [_chunk(b"IDAT", bytes(source[o : o + n])) for o, n in frame.data]
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
