"""The guard against a blank "done": a decode that came out entirely one colour, or entirely
transparent, is checked against a second decoder before it becomes renditions.

A decoder can return all-zero pixels for data it does not really read (libtiff's old-style
JPEG in tiles did: every pixel (0, 0, 0, 0), no error). Blank images exist (a black frame, a
transparent spacer), so blank alone is no reason to refuse: Pillow, bundled for its WebP
encoder, decodes the file again, and only when it sees a picture where libvips saw none is the
image refused, naming it. The check reads the smallest rendition (a few thousand pixels), so
it costs nothing measurable on the images that are not blank.
"""

from __future__ import annotations

import pyvips

from processor.core.errors import UnsupportedFormat
from processor.core.formats import BY_NAME, not_decodable_feature
from processor.imaging.pillow import image_module
from processor.imaging.spool import Spooled

# Formats Pillow reads without a plugin (HEIC and AVIF have their own decoders' checks).
_PILLOW_READS = frozenset({"jpeg", "png", "gif", "tiff", "webp"})


def is_blank(image: pyvips.Image) -> bool:
    """Every band one value, or an alpha band that is zero everywhere."""
    stats = image.stats()
    lows = [stats(0, band + 1)[0] for band in range(image.bands)]
    highs = [stats(1, band + 1)[0] for band in range(image.bands)]
    if image.hasalpha() and highs[-1] == 0:
        return True
    return lows == highs


def _pillow_sees_a_picture(spooled: Spooled) -> bool:
    """Whether Pillow decodes the first frame to more than one value (False where it cannot
    decode the file at all: then there is no second opinion)."""
    module = image_module("zlib")
    if module is None:
        return False
    try:
        with module.open(spooled.path) as im:
            im.draft(im.mode, (256, 256))
            extrema = im.getextrema()
    except (OSError, ValueError, SyntaxError, EOFError, module.DecompressionBombError):
        return False
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return any(low != high for low, high in bands)


def check(image: pyvips.Image, spooled: Spooled, fmt: str) -> None:
    """Refuse a blank decode that a second decoder sees as a picture."""
    if fmt not in _PILLOW_READS or not is_blank(image):
        return
    if _pillow_sees_a_picture(spooled):
        raise UnsupportedFormat(
            not_decodable_feature(
                BY_NAME[fmt], "data this build decodes as blank pixels (Pillow reads a picture)"
            )
        )
