"""Pillow, for the codecs the engine takes from it (WebP's encoder, AVIF sequences' decoder).

Imported on first use, not at import (about 30 ms): a cold start that never needs it pays
nothing. No pyvips here.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def image_module(codec: str) -> Any | None:
    """Pillow's Image module when this build of Pillow has ``codec`` (``features.check``);
    None when Pillow or the codec is missing."""
    try:
        from PIL import Image, features
    except ImportError:
        return None
    return Image if features.check(codec) else None
