"""The implementations under test, behind one call: ``process(path) -> (renditions, stages)``.

All three make the same renditions (the engine's defaults): ``optimized`` inside 2048x2048 and
``thumb`` inside 320x320, each as JPEG q82 (PNG when the image has alpha) plus WebP q80,
metadata stripped. ``stages`` is each implementation's own split of its time, in ms.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

IMPLS = ("engine", "pillow", "floor")
# WebP encoder effort (libwebp's "method", 0..6) for every implementation alike; `run.py
# --webp-effort` sets it in the workers' environment. 4 is libwebp's, Pillow's and the engine's
# default.
WEBP_EFFORT_ENV = "IMGPIPE_BENCH_WEBP_EFFORT"


def webp_effort() -> int:
    import os

    return int(os.environ.get(WEBP_EFFORT_ENV, "4"))


LABELS = {
    "engine": "imgpipe engine",
    "pillow": "Pillow (draft, one decode)",
    "floor": "bare pyvips floor",
}


class Rendered(NamedTuple):
    name: str  # rendition name: "optimized" or "thumb"
    format: str  # "jpeg" | "png" | "webp"
    width: int
    height: int
    bytes: int


Stages = dict[str, float]  # stage name -> milliseconds
Process = Callable[[Path], tuple[list[Rendered], Stages]]


def load(name: str) -> Process:
    """Build one implementation, as a Lambda would at cold start (imports included)."""
    if name == "pillow":
        from benchmarks import impl_pillow

        return impl_pillow.process
    if name == "floor":
        from benchmarks import impl_vips_floor

        return impl_vips_floor.process
    if name == "engine":
        return _engine()
    raise ValueError(f"unknown implementation {name!r}; known: {', '.join(IMPLS)}")


def _engine() -> Process:
    from processor.core.config import EngineConfig, Quality
    from processor.imaging.engine import Engine

    quality = Quality(webp_effort=webp_effort())
    defaults = EngineConfig()
    config = EngineConfig(
        renditions=tuple(r.model_copy(update={"quality": quality}) for r in defaults.renditions)
    )
    engine = Engine(config)

    def process(path: Path) -> tuple[list[Rendered], Stages]:
        result = engine.process(path, image_id="bench", versioned=False)
        renditions = [
            Rendered(o.info.name, o.info.format, o.info.width, o.info.height, len(o.data))
            for o in result.outputs
        ]
        return renditions, {k: float(v) for k, v in result.timings.items()}

    return process
