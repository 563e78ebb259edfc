"""Auto quality on a real photo: the search lands near the target in a few trials, and a
short time budget keeps the calibrated setting."""

from __future__ import annotations

import pytest
import pyvips

from processor.core import calibration
from processor.core.config import EngineConfig, RenditionSpec, Scoring
from processor.imaging.budget import TimeBudget
from processor.imaging.encode import SAVERS
from processor.imaging.engine import Engine
from processor.imaging.score import ssimulacra2
from processor.imaging.tune import MIN_BUDGET_LEFT, tune
from processor.rules.plan import Encode
from processor.rules.tune import MAX_TRIALS
from tests.conftest import GOOD

pytestmark = pytest.mark.integration

# 1920x1080: its calibrated JPEG scores far above the default target (92.8 against 80), so
# a search that does nothing fails here.
PHOTO = GOOD / "flowers.jpeg"


class Short(TimeBudget):
    """A budget with less left than a search needs (and not yet out)."""

    def share_left(self) -> float:
        return MIN_BUDGET_LEFT / 2


def test_auto_meets_the_target_on_a_real_photo_in_at_most_six_trials() -> None:
    # GIVEN a 2048 px JPEG rendition with auto quality, and scoring on
    spec = RenditionSpec(
        name="optimized", folder="optimized", width=2048, height=2048, formats=("jpeg",), auto=True
    )
    config = EngineConfig(renditions=(spec,), scoring=Scoring(enabled=True))
    # WHEN the photo is processed
    (out,) = Engine(config).process(PHOTO, image_id="img").outputs
    # THEN the file's own score is within 3 points of the target, after at most 6 trials
    decoded = pyvips.Image.new_from_buffer(out.data, "")
    reference = pyvips.Image.thumbnail(str(PHOTO), 2048, height=2048, size="down")
    achieved = ssimulacra2(reference.copy_memory(), decoded)
    assert abs(achieved - spec.target) <= 3, achieved
    assert abs(out.info.score - spec.target) <= 3, out.info.score
    assert 1 <= out.trials <= MAX_TRIALS
    # ... and the record says which setting was searched: not the calibrated one
    calibrated = calibration.quality_for("jpeg", spec.target, 1920)
    assert out.info.quality is not None and out.info.quality < calibrated


def test_a_short_budget_keeps_the_calibrated_setting_without_a_trial() -> None:
    image = pyvips.Image.thumbnail(str(PHOTO), 640)
    enc = Encode(format="jpeg", quality=86, effort=2)
    found = tune(image, enc, 80.0, SAVERS["jpeg"].still, Short(60))
    assert (found.quality, found.trials, found.score) == (86, 0, None)
