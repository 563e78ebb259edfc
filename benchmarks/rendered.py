"""What every implementation under test returns, and the one setting they share: the
vocabulary of benchmarks/impls.py and the implementations it loads."""

from __future__ import annotations

import os
from typing import NamedTuple

# WebP encoder effort (libwebp's "method", 0..6) for every implementation alike; `run.py
# --webp-effort` sets it in the workers' environment. 4 is libwebp's, Pillow's and the engine's
# default.
WEBP_EFFORT_ENV = "IMGPIPE_BENCH_WEBP_EFFORT"


def webp_effort() -> int:
    return int(os.environ.get(WEBP_EFFORT_ENV, "4"))


class Rendered(NamedTuple):
    name: str  # rendition name: "optimized" or "thumb"
    format: str  # "jpeg" | "png" | "webp"
    width: int
    height: int
    bytes: int


Stages = dict[str, float]  # stage name -> milliseconds
