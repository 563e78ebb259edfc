"""Pixels held once: a still image (``Held``) or an animation's frames (``Frames``).

Every step after decode reads these, never the file: the decode is done once, and each
rendition is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyvips


@dataclass(frozen=True)
class Held:
    """Computed pixels in one buffer that Python owns, read by libvips as ``image`` and by
    the WebP encoder as ``data``: unlike ``copy_memory`` followed by ``write_to_memory``, one
    copy of the pixels, not two (9 MB less at the peak for a 2048 px rendition, and a few ms
    off the critical path before the WebP encode starts)."""

    image: pyvips.Image
    data: Any  # a buffer of image.width * image.height * image.bands bytes (8-bit)

    @classmethod
    def over(
        cls,
        data: Any,
        width: int,
        height: int,
        bands: int,
        band_format: str,
        interpretation: str,
        xres: float,
        yres: float,
    ) -> Held:
        """A libvips image reading ``data`` in place. The resolution is carried over (JPEG
        and PNG write it into their headers); other metadata is not needed: every encode
        strips it. new_from_memory keeps ``data`` referenced for as long as the image (and
        what is made from it) lives."""
        image = pyvips.Image.new_from_memory(data, width, height, bands, band_format)
        return cls(image.copy(interpretation=interpretation, xres=xres, yres=yres), data)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.width, self.image.height


def hold(image: pyvips.Image) -> Held:
    """Compute ``image`` into memory once."""
    return Held.over(
        image.write_to_memory(),
        image.width,
        image.height,
        image.bands,
        image.format,
        image.interpretation,
        image.xres,
        image.yres,
    )


# Interpretations whose float samples are display values from 0 to 1 (TIFF's and libvips'
# convention); scRGB, LAB and XYZ floats are colour coordinates that colourspace converts.
_DISPLAY_FLOATS = frozenset({"b-w", "srgb", "rgb", "multiband", "grey16", "rgb16"})


def display_range(image: pyvips.Image) -> pyvips.Image:
    """Signed and floating-point samples moved to the unsigned range a cast keeps: a cast
    alone clips signed samples at 0 (a signed 8-bit photo comes out dark) and floats from 0 to
    1 to 0 or 1 (black)."""
    fmt = str(image.format)
    grey = image.bands < 3
    if fmt in ("float", "double") and image.interpretation in _DISPLAY_FLOATS:
        scaled = (image * 255 + 0.5).cast("uchar")
        return scaled.copy(interpretation="b-w" if grey else "srgb")
    if fmt == "char":
        return (image + 128).cast("uchar").copy(interpretation="b-w" if grey else "srgb")
    if fmt == "short":
        return (image + 32768).cast("ushort").copy(interpretation="grey16" if grey else "rgb16")
    return image


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Greyscale, 16-bit, signed, floating-point, LAB and untagged CMYK all end as 8-bit sRGB
    (alpha kept)."""
    image = display_range(image)
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


@dataclass(frozen=True)
class Frames:
    """An animation's frames, held once as libvips' "toilet roll": every frame of the same
    size, top to bottom in one buffer, with their delays (ms, as browsers play them) and the
    loop count (plays, 0 = forever). Every frame is what a browser shows at that moment:
    disposal and blending already done."""

    held: Held
    page_height: int
    delays_ms: tuple[int, ...]
    loop: int
    poster: int = 0  # the frame the still formats show

    @property
    def count(self) -> int:
        return int(self.held.image.height) // self.page_height

    @property
    def size(self) -> tuple[int, int]:
        """One frame's size."""
        return self.held.image.width, self.page_height

    def frame(self, index: int) -> pyvips.Image:
        return self.held.image.crop(0, index * self.page_height, self.size[0], self.page_height)

    def still(self) -> Held:
        """The poster frame, held on its own: what the still formats encode."""
        return hold(self.frame(min(self.poster, self.count - 1)))

    def animation(self) -> pyvips.Image:
        """The roll with the metadata libvips' savers write an animation from."""
        image = self.held.image.copy()
        image.set_type(pyvips.GValue.gint_type, "page-height", self.page_height)
        image.set_type(pyvips.GValue.array_int_type, "delay", list(self.delays_ms))
        image.set_type(pyvips.GValue.gint_type, "loop", self.loop)
        return image


Pixels = Held | Frames
