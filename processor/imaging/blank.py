"""The guard against a blank "done": a decode that came out entirely one colour, or entirely
transparent, is checked against a second decoder before it becomes renditions.

A decoder can return all-zero pixels for data it does not really read (libtiff's old-style
JPEG in tiles did: every pixel (0, 0, 0, 0), no error). Blank images exist (a black frame, a
transparent spacer), so blank alone is no reason to refuse: Pillow, bundled for its WebP
encoder, decodes the file again, and only when it sees a picture where libvips saw none is the
image refused, naming it. The check reads the smallest rendition (a few thousand pixels), so
it costs nothing measurable on the images that are not blank; Pillow decodes a TIFF whole, so
it is asked only up to ``SECOND_OPINION_PIXELS``.
"""

from __future__ import annotations

import pyvips

from processor.core.errors import UnsupportedFormat
from processor.core.formats import BY_NAME, not_decodable_feature
from processor.imaging.pillow import image_module
from processor.imaging.spool import Spooled

# Where libvips' decoder and Pillow's differ: TIFF (libtiff's many codec and layout paths;
# Pillow reads the first page with its own unpackers). JPEG, PNG and WebP are the same
# libraries in both; an animation's first frame is not Pillow's still.
_SECOND_OPINION = frozenset({"tiff"})


# Pillow decodes a TIFF whole: the second opinion is asked only up to this many pixels (64 MB
# of RGBA), so a genuinely black giant does not double the image's memory unaccounted.
SECOND_OPINION_PIXELS = 16_000_000


def is_blank(image: pyvips.Image) -> bool:
    """Every sample zero (black, or black and transparent: how a decoder that did not read
    the data leaves its buffer), or an alpha band that is zero everywhere."""
    highs = [image.stats()(1, band + 1)[0] for band in range(image.bands)]
    return all(h == 0 for h in highs) or (image.hasalpha() and highs[-1] == 0)


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


def check(image: pyvips.Image, spooled: Spooled, fmt: str, pixels: int) -> None:
    """Refuse a blank decode that a second decoder sees as a picture (``pixels``: the
    source's, which Pillow would decode)."""
    if fmt not in _SECOND_OPINION or pixels > SECOND_OPINION_PIXELS or not is_blank(image):
        return
    if _pillow_sees_a_picture(spooled):
        raise UnsupportedFormat(
            not_decodable_feature(
                BY_NAME[fmt], "data this build decodes as blank pixels (Pillow reads a picture)"
            )
        )
