"""A GIF's logical screen and where its first frame lies on it, from the blocks alone.

A first frame smaller than the screen leaves the rest of the canvas unpainted: browsers show
it transparent, where libvips' GIF loader (without a transparent colour in the file) paints
it black. Pure: no pixel decoded here. GIF89a specification, sections 18 to 23.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_MAX_BLOCKS = 10_000


@dataclass(frozen=True)
class FirstFrame:
    canvas: tuple[int, int]
    left: int
    top: int
    width: int
    height: int
    # What is done with the frame's rectangle before the next frame (its Graphic Control
    # Extension): 0/1 keep it, 2 clear it to the background, 3 restore what was there.
    disposal: int = 0

    @property
    def covers_canvas(self) -> bool:
        cw, ch = self.canvas
        return (
            self.left <= 0
            and self.top <= 0
            and self.left + self.width >= cw
            and self.top + self.height >= ch
        )


def clears(frames: list[FirstFrame]) -> bool:
    """Some part of the screen shows no frame at some point: the first frame leaves it
    unpainted, or a frame before the last is cleared to the background (browsers show
    both transparent, even in a GIF without a transparent colour)."""
    if not frames:
        return False
    return not frames[0].covers_canvas or any(f.disposal == 2 for f in frames[:-1])


def first_frame(path: Path) -> FirstFrame | None:
    """The first image descriptor's rectangle, or None where the blocks cannot be read."""
    frames = rectangles(path, limit=1)
    return frames[0] if frames else None


def rectangles(path: Path, limit: int = _MAX_BLOCKS) -> list[FirstFrame]:
    """Each frame's rectangle on the screen, in order (up to ``limit``); empty where the
    blocks cannot be read."""
    found: list[FirstFrame] = []
    try:
        data = path.read_bytes()
        if data[:6] not in (b"GIF87a", b"GIF89a"):
            return []
        width, height, packed = struct.unpack_from("<HHB", data, 6)
        pos = 13
        if packed & 0x80:
            pos += 3 * (2 ** ((packed & 0x07) + 1))
        disposal = 0
        for _ in range(_MAX_BLOCKS):
            kind = data[pos]
            if kind == 0x3B or len(found) >= limit:
                return found
            if kind == 0x2C:
                left, top, w, h, local = struct.unpack_from("<HHHHB", data, pos + 1)
                found.append(FirstFrame((width, height), left, top, w, h, disposal))
                disposal = 0
                pos += 10
                if local & 0x80:
                    pos += 3 * (2 ** ((local & 0x07) + 1))
                pos += 1  # the LZW minimum code size, then the data sub-blocks
            elif kind == 0x21:
                if data[pos + 1] == 0xF9 and data[pos + 2] >= 1:  # Graphic Control Extension
                    disposal = (data[pos + 3] >> 2) & 0x07
                pos += 2  # introducer and label, then data sub-blocks up to an empty one
            else:
                return found
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
    except (OSError, IndexError, struct.error):
        return found
    return found
