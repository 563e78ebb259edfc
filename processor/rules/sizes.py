"""Which stored file a size made on demand starts from: pure decisions from the record.

The cheapest source that loses nothing the size needs: the smallest stored rendition that is
at least as large as the size before its cut (so nothing is upscaled), of the image's whole
frame (a cover rendition's cut is not), and a still when the image is one; else the original.
A rendition is a re-encode of the original, so the size pays one more generation of lossy
coding; lossless PNG sources are preferred when they tie.
"""

from __future__ import annotations

from processor.core.record import ImageFacts, RenditionInfo
from processor.core.sizes import UNBOUNDED, Size

# Formats worth decoding again, best first at the same size (AVIF decodes slowly).
SOURCE_FORMATS = ("png", "webp", "jpeg")


def scaled_size(facts: ImageFacts, size: Size) -> tuple[int, int]:
    """The image scaled for ``size``, before a cover box cuts it (never above its own size)."""
    w, h = facts.width, facts.height
    bw, bh = size.width, size.height or UNBOUNDED
    sx, sy = bw / w, bh / h
    scale = min(1.0, max(sx, sy) if size.fit == "cover" else min(sx, sy))
    return max(1, round(w * scale)), max(1, round(h * scale))


def best_source(
    facts: ImageFacts, renditions: list[RenditionInfo], size: Size
) -> RenditionInfo | None:
    """The stored rendition to make ``size`` from; None: the original."""
    if facts.animated:
        return None  # only the original has every frame
    need_w, need_h = scaled_size(facts, size)
    candidates = [
        r
        for r in renditions
        if r.format in SOURCE_FORMATS
        and not r.animated
        and r.width >= need_w
        and r.height >= need_h
        and _whole_frame(r, facts)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (r.width * r.height, SOURCE_FORMATS.index(r.format)))


def _whole_frame(r: RenditionInfo, facts: ImageFacts) -> bool:
    """The rendition shows the whole image (its aspect, to a pixel of rounding), not a cut."""
    return abs(r.width * facts.height - r.height * facts.width) <= max(facts.width, facts.height)
