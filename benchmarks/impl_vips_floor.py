"""The floor: a bare single-decode pyvips loop, nothing else.

One ``thumbnail`` from the file (shrink-on-load, auto-rotate), held in memory, a second
thumbnail from it, and the encodes. No limits, no hashing, no metadata, no colour handling
beyond what ``thumbnail`` does itself: what any engine built on libvips costs at least.
"""

from __future__ import annotations

from pathlib import Path
from time import perf_counter

import pyvips

from benchmarks.rendered import Rendered, Stages, webp_effort


def process(path: Path) -> tuple[list[Rendered], Stages]:
    t0 = perf_counter()
    optimized = pyvips.Image.thumbnail(str(path), 2048, height=2048, size="down").copy_memory()
    t1 = perf_counter()
    thumb = optimized.thumbnail_image(320, height=320, size="down")
    alpha = optimized.hasalpha()
    out: list[Rendered] = []
    for name, image in (("optimized", optimized), ("thumb", thumb)):
        if alpha:
            out.append(_r(name, "png", image, image.pngsave_buffer(keep="none")))
        else:
            out.append(_r(name, "jpeg", image, image.jpegsave_buffer(Q=82, keep="none")))
        out.append(
            _r(name, "webp", image, image.webpsave_buffer(Q=80, effort=webp_effort(), keep="none"))
        )
    t2 = perf_counter()
    # The thumb's resize runs lazily inside its first encode: it is counted under "encode".
    return out, {"decode": (t1 - t0) * 1e3, "encode": (t2 - t1) * 1e3}


def _r(name: str, fmt: str, image: pyvips.Image, data: bytes) -> Rendered:
    return Rendered(name, fmt, image.width, image.height, len(data))
