"""Step 7, describe: what the record says about the image besides its renditions.

The dominant colour and a BlurHash placeholder, from a tiny copy of the smallest still
rendition (the poster frame, for an animation), and the facts read from the header.
"""

from __future__ import annotations

import math
from typing import Any

import pyvips

from processor.imaging.spool import Spooled
from processor.rules.header import Header
from processor.rules.metadata import blurhash, dominant_color, exif_datetime
from processor.rules.plan import Plan

# A 16-pixel copy is plenty for a 4x3-component BlurHash and the dominant colour, and keeps
# the pure-Python work near a millisecond.
_PLACEHOLDER_SIZE = 16


def flatten(image: pyvips.Image) -> pyvips.Image:
    if image.hasalpha():
        return image.flatten(background=[255, 255, 255])
    return image


def describe(image: pyvips.Image) -> tuple[str, str]:
    """Dominant colour and BlurHash, from a tiny copy of the smallest rendition.

    The copy is a box filter by a whole factor (``shrink``): BlurHash is itself a blur, and
    ``thumbnail_image`` would first build Lanczos kernels, about 2 ms for every image.
    """
    factor = max(1, math.ceil(max(image.width, image.height) / _PLACEHOLDER_SIZE))
    # Never past one pixel on the short side: a 1000x40000 upload's thumbnail is 8 px wide.
    fx, fy = min(factor, image.width), min(factor, image.height)
    tiny = flatten(image.shrink(fx, fy) if factor > 1 else image)
    pixels = bytes(tiny.write_to_memory())
    return dominant_color(pixels), blurhash(pixels, tiny.width, tiny.height)


def facts(header: Header, head_image: pyvips.Image, spooled: Spooled, plan: Plan) -> dict[str, Any]:
    """The record's facts about the upload (ImageFacts' fields but colour and placeholder)."""
    fields = set(head_image.get_fields())
    captured = (
        exif_datetime(head_image.get("exif-ifd2-DateTimeOriginal"))
        if "exif-ifd2-DateTimeOriginal" in fields
        else None
    )
    width, height = header.oriented_size
    bits = {"uchar": 8, "char": 8, "ushort": 16, "short": 16}.get(str(head_image.format), 32)
    if header.format in ("heic", "avif") and "bits-per-sample" in fields:
        # libheif's coded depth (10, 12): the container's 16-bit samples are not the source's.
        bits = int(head_image.get("bits-per-sample"))
    motion = plan.motion
    return {
        "sha256": spooled.sha256,
        "input_bytes": spooled.size,
        "format": header.format,
        "width": width,
        "height": height,
        "orientation": header.orientation,
        "has_alpha": header.has_alpha,
        "frames": header.frames,
        "animated": motion is not None,
        "duration_ms": motion.duration_ms if motion else None,
        "loop": motion.loop if motion else None,
        "still_reason": motion.still if motion else None,
        "colour_space": header.interpretation,
        "bits_per_sample": bits,
        "icc_description": header.icc_description,
        "captured_at": captured,
    }
