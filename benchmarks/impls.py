"""The implementations under test, behind one call: ``process(path) -> (renditions, stages)``.

All three make the same renditions (the engine's defaults): ``optimized`` inside 2048x2048 and
``thumb`` inside 320x320, each as JPEG q82 (PNG when the image has alpha) plus WebP q80,
metadata stripped. ``stages`` is each implementation's own split of its time, in ms.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.rendered import Rendered, Stages, webp_effort

IMPLS = ("engine", "pillow", "floor")
LABELS = {
    "engine": "imgpipe engine",
    "pillow": "Pillow (draft, one decode)",
    "floor": "bare pyvips floor",
}


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
    from processor.core.config import EngineConfig, Quality, Scoring
    from processor.imaging.engine import Engine

    # The renditions the other implementations make (JPEG q82, WebP q80, no AVIF), so the
    # comparison is of pipelines, not of ladders; the default ladder (AVIF + WebP + JPEG at
    # the quality target) is costed by `python -m benchmarks.bytes`. JPEG effort 0 is
    # baseline with optimised Huffman tables, Pillow's is without (about 1% more bytes).
    quality = Quality(jpeg=82, jpeg_effort=0, webp=80, webp_effort=webp_effort())
    defaults = EngineConfig()
    config = EngineConfig(
        renditions=tuple(
            r.model_copy(update={"formats": ("jpeg", "webp"), "quality": quality})
            for r in defaults.renditions
        ),
        # No implementation compared here scores its renditions: the same work, no more.
        scoring=Scoring(enabled=False),
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
