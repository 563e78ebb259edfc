"""libvips for the engine: locked down once per process, its loaders, its errors read.

Every libvips loader but the allowed ones (processor/core/formats.py says which format uses
which) is blocked for the whole process, as are untrusted operations: no bytes can make
libvips run a loader this pipeline does not mean to run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pyvips

from processor.core import tiff
from processor.core.diagnostics import vips_detail
from processor.core.errors import CorruptImage, ImageRejected, UnsupportedFormat
from processor.core.formats import BY_NAME, LOADERS, not_decodable_feature
from processor.imaging.budget import TimeBudget
from processor.imaging.spool import Spooled

# The libvips function of each allowed loader class.
_LOADER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "VipsForeignLoadJpeg": pyvips.Image.jpegload,
    "VipsForeignLoadPng": pyvips.Image.pngload,
    "VipsForeignLoadWebp": pyvips.Image.webpload,
    "VipsForeignLoadNsgif": pyvips.Image.gifload,
    "VipsForeignLoadTiff": pyvips.Image.tiffload,
    "VipsForeignLoadHeif": pyvips.Image.heifload,
}
# Format name -> its loader function.
LOAD = {fmt: _LOADER_FUNCTIONS[cls] for fmt, cls in LOADERS.items()}

_lock = threading.Lock()
_ready = False


def init_vips(cache_max: int = 0) -> None:
    """Lock libvips down once per process: no untrusted or unexpected loader can ever run."""
    global _ready
    with _lock:
        if _ready:
            return
        pyvips.block_untrusted_set(True)
        pyvips.operation_block_set("VipsForeignLoad", True)
        for name in set(LOADERS.values()):
            pyvips.operation_block_set(name, False)
        # Each upload is seen once: an operation cache only holds memory in warm containers.
        pyvips.cache_set_max(cache_max)
        pyvips.cache_set_max_mem(64 * 1024 * 1024 if cache_max else 0)
        _ready = True


def message(e: pyvips.Error, spooled: Spooled, fmt: str) -> str:
    """libvips' detail about this upload only: no path, no other image's lines, no repeats."""
    return vips_detail(str(e.detail or ""), str(spooled.path), BY_NAME[fmt].error_domains)


def damaged(e: pyvips.Error, spooled: Spooled, fmt: str) -> ImageRejected:
    """Damaged data, unless libvips' words say a codec is missing from this build."""
    label = BY_NAME[fmt].label
    detail = message(e, spooled, fmt)
    codec = tiff.missing_codec(detail) if fmt == "tiff" else None
    if codec is not None:
        return UnsupportedFormat(not_decodable_feature(BY_NAME[fmt], codec))
    return CorruptImage(
        f"the {label} image data is damaged or truncated" + (f": {detail}" if detail else "")
    )


def failure(
    e: pyvips.Error, budget: TimeBudget, step: str, spooled: Spooled, fmt: str
) -> Exception:
    """A libvips error, read: the budget's kill, or damaged data."""
    if budget.expired:
        return budget.exceeded(step)
    return damaged(e, spooled, fmt)
