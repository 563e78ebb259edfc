"""The cost model against real decodes, and the time budget against a real slow image.

The measured cases are generated here, at test time (flat pixels: a 6000x6000 GIF is 26 KB),
and each runs in a fresh process whose peak RSS is its own (benchmarks/decode_memory.py).
The estimate must be above the measured peak (it protects the function) and not far above
it (it must not refuse what fits): generous margins, no timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.decode_memory import Case, measure
from processor.core.config import EngineConfig, Limits
from processor.rules.cost import MB
from processor.rules.header import Header

pytestmark = pytest.mark.integration


def header(fmt: str, w: int, h: int, **kw: object) -> Header:
    return Header(format=fmt, width=w, height=h, input_bytes=200_000, **kw)  # type: ignore[arg-type]


def budget(mb: int, **kw: int) -> EngineConfig:
    return EngineConfig(limits=Limits(max_image_memory=mb * MB, **kw))


# --- pure rules --------------------------------------------------------------------------


# --- measured ----------------------------------------------------------------------------

MEASURED = [
    Case("jpeg", 8000, 8000),
    Case("jpeg", 4000, 4000, variant="progressive"),
    Case("png", 8000, 8000),
    Case("png", 4000, 4000, variant="interlaced"),
    Case("tiff", 8000, 8000, bands=4),
    Case("webp", 6000, 6000, bands=4),
    Case("gif", 6000, 6000),
    Case("avif", 4000, 4000),
    Case("heic", 4000, 3000),
]


# --- the time budget ----------------------------------------------------------------------


def slow_tiff(path: Path, side: int = 6000) -> Path:
    """A float RGBA TIFF: 1 MB of deflate that takes seconds of libvips' time to shrink."""
    import pyvips

    image = (pyvips.Image.black(side, side, bands=4) + 100).cast("float")
    image.copy(interpretation="scrgb").tiffsave(str(path), compression="deflate")
    return path


@pytest.mark.parametrize("case", MEASURED, ids=[c.name for c in MEASURED])
def test_the_estimate_is_above_the_measured_peak_and_near_it(case: Case, tmp_path: Path) -> None:
    if case.format == "heic":
        pytest.importorskip("pillow_heif")  # the HEVC encoder: a dev dependency
    measured = measure(case, tmp_path)
    # the measured peak is the image's own: real, and below the estimate ...
    assert measured.peak_bytes > 10 * MB, measured
    assert measured.estimate_bytes >= measured.peak_bytes, measured.row()
    # ... but not so far below that the model would refuse images that fit
    assert measured.estimate_bytes <= 2.5 * measured.peak_bytes + 48 * MB, measured.row()


def test_an_image_past_its_time_budget_is_stopped_and_done_with_a_bigger_one(
    tmp_path: Path,
) -> None:
    import time

    from processor.core.errors import TimeBudgetExceeded
    from processor.imaging.engine import Engine

    # GIVEN an image that takes seconds (about 0.6 s of CPU), and a budget of a tenth of a
    # second: several times too little even on two idle fast cores
    source = slow_tiff(tmp_path / "slow.tif")
    engine = Engine(EngineConfig(limits=Limits(max_seconds=30)))
    # WHEN it is processed with that budget
    started = time.monotonic()
    with pytest.raises(TimeBudgetExceeded) as stopped:
        engine.process(source, image_id="slow", time_budget_s=0.1)
    # THEN libvips was stopped (the budget itself, with a generous margin), and the record
    # will say `timeout`, not retried, with a message that names the budget and no path
    assert time.monotonic() - started < 10
    assert stopped.value.code == "timeout" and not stopped.value.retryable
    assert "time budget of 0.1 s" in stopped.value.message
    assert str(tmp_path) not in stopped.value.message
    # ... and with a budget it fits in (a bigger function, `imgpipe reprocess --ids`) it is done
    done = Engine(EngineConfig(limits=Limits(max_seconds=300))).process(source, image_id="slow")
    assert done.facts.width == 6000
    # ... and the engine is fine for the next image
    small = tmp_path / "small.png"
    import pyvips

    (pyvips.Image.black(64, 48, bands=3) + 9).cast("uchar").pngsave(str(small))
    assert engine.process(small, image_id="small").facts.width == 64
