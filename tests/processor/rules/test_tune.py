"""The quality search of auto renditions, on a fake scorer: a pure curve, no libvips."""

from __future__ import annotations

import pytest

from processor.core.config import EngineConfig, RenditionSpec
from processor.rules.plan import resolve_formats
from processor.rules.tune import MAX_TRIALS, search

pytestmark = pytest.mark.unit


def curve(slope: float, at_zero: float):
    """A scorer rising with the setting (as every encoder's does), and the trials it saw."""
    seen: list[int] = []

    def trial(q: int) -> float:
        seen.append(q)
        return min(100.0, at_zero + slope * q)

    return trial, seen


@pytest.mark.parametrize("start", [1, 20, 50, 82, 100])
@pytest.mark.parametrize(("slope", "at_zero"), [(0.5, 40.0), (1.0, 10.0), (0.3, 60.0), (2.0, 0.0)])
def test_the_search_finds_the_lowest_setting_reaching_the_target_in_few_trials(
    start, slope, at_zero
):
    trial, seen = curve(slope, at_zero)
    target = 80.0
    found = search(trial, target, start, 1, 100)
    assert found.trials == len(seen) <= MAX_TRIALS
    assert len(set(seen)) == len(seen)  # no setting tried twice
    assert found.score == trial(found.quality)
    assert found.score >= target
    # Within a point and a half of the target: the slopes make a setting worth up to 2 points.
    assert found.score - target <= max(1.5, slope)


def test_a_target_no_setting_reaches_gives_the_highest_tried():
    trial, seen = curve(0.1, 50.0)  # 60 at best
    found = search(trial, 80.0, 70, 1, 100)
    assert found.quality == 100 and found.score == pytest.approx(60.0)
    assert len(seen) <= MAX_TRIALS


def test_the_trials_stop_at_the_limit_asked():
    trial, seen = curve(0.5, 40.0)
    found = search(trial, 80.0, 1, 1, 100, max_trials=2, tolerance=0.0)
    assert found.trials == len(seen) == 2


def test_a_short_budget_keeps_the_start_setting_untried():
    trial, seen = curve(0.5, 40.0)
    found = search(trial, 80.0, 77, 1, 100, go_on=lambda: False)
    assert (found.quality, found.score, found.trials) == (77, None, 0)
    assert seen == []


def test_a_budget_running_out_midway_keeps_the_best_so_far():
    trial, seen = curve(0.5, 40.0)
    left = iter([True, True, False])
    found = search(trial, 80.0, 50, 1, 100, go_on=lambda: next(left))
    assert found.trials == len(seen) == 2
    assert found.quality in seen


def test_auto_searches_only_lossy_formats_left_to_the_calibration():
    spec = RenditionSpec(
        name="r",
        folder="r",
        width=2048,
        height=2048,
        auto=True,
        formats=("avif", "webp", "jpeg"),
        quality={"webp": 75},
    )
    encodes = {e.format: e for e in resolve_formats(spec, has_alpha=False)}
    assert encodes["jpeg"].target == encodes["avif"].target == spec.target
    assert encodes["webp"].target is None and encodes["webp"].quality == 75
    png = resolve_formats(spec, has_alpha=True)
    assert all(e.target is None for e in png if e.format == "png")
    moving = resolve_formats(spec, has_alpha=False, animated=True)
    assert next(e for e in moving if e.format == "webp").target is None
    off = resolve_formats(spec.model_copy(update={"auto": False}), has_alpha=False)
    assert all(e.target is None for e in off)


def test_auto_changes_the_config_version_and_off_keeps_it():
    base = EngineConfig()
    off = EngineConfig.model_validate_json(base.model_dump_json())
    assert off.version == base.version
    on = EngineConfig(
        renditions=tuple(r.model_copy(update={"auto": True}) for r in base.renditions)
    )
    assert on.version != base.version
    with pytest.raises(ValueError):
        RenditionSpec(name="r", folder="r", width=1, height=1, auto="sometimes")
