"""Score offsets of ``auto`` renditions' reduced copies. Written by
`python -m benchmarks.auto_quality`; do not edit by hand.

format -> median score of the rendition less its reduced copy's, at the same setting.
"""

from __future__ import annotations

PHOTOS = 5
OFFSETS: dict[str, float] = {
    "avif": -0.67,
    "jpeg": 1.4,
    "webp": -3.62,
}
