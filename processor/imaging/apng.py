"""APNG frames composed as a browser shows them (the APNG specification's disposal and blending).

Each frame's data is rebuilt as a plain PNG (processor/core/apng.py) and decoded by libvips'
PNG loader; the canvas starts transparent, each frame is blended onto it (``source``
replaces its rectangle, ``over`` composes onto it) and then disposed of as it says (``none``
keeps it, ``background`` clears its rectangle, ``previous`` puts back what was there). A
first frame that says ``previous`` clears, as the specification asks. Pillow's APNG reader
gets ``previous`` wrong when frames are read one after another; it is the independent check
in the tests, read frame by frame from a fresh file.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import pyvips

from processor.core import apng
from processor.imaging.pixels import hold, to_srgb


def _rgba(image: pyvips.Image, colour_manage: bool) -> pyvips.Image:
    """A decoded frame as 8-bit sRGB with alpha."""
    if colour_manage and "icc-profile-data" in image.get_fields():
        image = image.icc_transform("srgb", embedded=True, intent="relative")
    image = to_srgb(image)
    return image if image.bands == 4 else image.bandjoin(255)


def compose(
    path: Path, animation: apng.Animation, count: int, *, colour_manage: bool
) -> Iterator[pyvips.Image]:
    """The first ``count`` frames, each the whole canvas as a browser shows it (8-bit RGBA)."""
    clear = pyvips.Image.black(animation.width, animation.height, bands=4).copy(
        interpretation="srgb"
    )
    canvas = hold(clear.cast("uchar")).image
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for index, frame in enumerate(animation.frames[:count]):
            png = apng.frame_png(animation, frame, m)
            decoded = pyvips.Image.pngload_buffer(png, fail_on="error")
            pixels = _rgba(decoded, colour_manage)
            area = (frame.x, frame.y, frame.width, frame.height)
            if frame.blend == apng.BLEND_OVER:
                pixels = canvas.crop(*area).composite2(pixels, "over").cast("uchar")
            shown = hold(canvas.insert(pixels, frame.x, frame.y)).image
            # The resolution the PNG states (libvips' 72 dpi without pHYs), as for any PNG.
            yield shown.copy(xres=decoded.xres, yres=decoded.yres)
            dispose = frame.dispose
            if dispose == apng.DISPOSE_PREVIOUS and index == 0:
                dispose = apng.DISPOSE_BACKGROUND
            if dispose == apng.DISPOSE_NONE:
                canvas = shown
            elif dispose == apng.DISPOSE_BACKGROUND:
                canvas = hold(shown.insert(clear.crop(*area).cast("uchar"), frame.x, frame.y)).image
            # previous: the canvas stays as it was before this frame
