"""One perceptual target, each format's quality read off the measured calibration table."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from processor.core import calibration
from processor.core import calibration_table as table
from processor.core.config import DEFAULT_CONFIG, DEFAULT_TARGET, Quality, RenditionSpec
from processor.core.encoders import ENCODERS
from processor.rules.plan import resolve_formats

pytestmark = pytest.mark.unit

LOSSY = [name for name, e in ENCODERS.items() if e.calibrated]


def test_the_table_is_current_every_lossy_format_at_every_default_rendition_size() -> None:
    # Written by `python -m benchmarks.calibrate`: a format added to the encoder table without
    # a calibration, or a default rendition size without a curve, fails here.
    assert sorted(table.CURVES) == sorted(LOSSY)
    assert table.PHOTOS >= 12
    boxes = {max(r.width, r.height) for r in DEFAULT_CONFIG.renditions}
    for fmt in LOSSY:
        assert set(calibration.sizes(fmt)) == boxes
        # the curves were measured at the table's default efforts
        effort = ENCODERS[fmt].effort
        if effort is not None:
            assert table.EFFORTS[effort.field] == effort.default
        for size in calibration.sizes(fmt):
            points = calibration.curve(fmt, size)
            assert len(points) >= 5
            # a higher setting never scores much lower (medians of real photos, so allow noise)
            assert all(b[1] >= a[1] - 1 for a, b in zip(points, points[1:], strict=False))


def test_the_default_target_keeps_the_quality_the_jpeg_had_before_the_calibration() -> None:
    # The default was chosen from measurement so that no one's JPEG got worse: at every
    # default size, the JPEG setting the target gives scores (median of the calibration's
    # photos) at least what the q82 baseline JPEG scored before, and the target is within a
    # point of that score (not a raise bought with bytes no one asked for).
    for size, before in table.BEFORE["jpeg"].items():
        shipped = calibration.quality_for("jpeg", DEFAULT_TARGET, size)
        assert calibration.score_at("jpeg", shipped, size) >= before, (size, shipped)
    assert DEFAULT_TARGET >= max(table.BEFORE["jpeg"].values()) - 1


def test_the_quality_for_a_target_is_the_lowest_setting_that_reaches_it() -> None:
    for fmt in LOSSY:
        for size in calibration.sizes(fmt):
            points = calibration.curve(fmt, size)
            lo, hi = points[0][1], points[-1][1]
            for target in (lo + (hi - lo) * f for f in (0.2, 0.5, 0.8)):
                q = calibration.quality_for(fmt, target, size)
                assert calibration.score_at(fmt, q, size) >= target - 1e-6
                assert calibration.score_at(fmt, q - 1, size) < target
            # beyond the measured range: the ends, never outside the setting's range
            assert calibration.quality_for(fmt, 0, size) == points[0][0]
            assert calibration.quality_for(fmt, 100, size) == points[-1][0]
            assert calibration.quality_for(fmt, 100, size, high=points[-1][0] - 1) < points[-1][0]


def test_a_rendition_reads_the_curve_measured_nearest_its_size() -> None:
    small, large = min(calibration.sizes("jpeg")), max(calibration.sizes("jpeg"))
    assert calibration.nearest_size("jpeg", 16) == small
    assert calibration.nearest_size("jpeg", 600) == small
    assert calibration.nearest_size("jpeg", 1200) == large
    assert calibration.nearest_size("jpeg", 8000) == large


def test_the_plan_encodes_each_lossy_format_at_the_setting_its_target_needs() -> None:
    spec = RenditionSpec(name="t", folder="t", width=2048, height=2048, target=85)
    encodes = resolve_formats(spec, has_alpha=False, size=(2048, 1536))
    assert [e.format for e in encodes] == list(spec.formats)
    for e in encodes:
        assert e.quality == calibration.quality_for(e.format, 85, 2048)
    lower = resolve_formats(spec.model_copy(update={"target": 70}), has_alpha=False)
    assert all(a.quality < b.quality for a, b in zip(lower, encodes, strict=True))


def test_a_quality_set_in_the_config_is_used_as_is() -> None:
    spec = RenditionSpec(
        name="t", folder="t", width=320, height=320, quality=Quality(jpeg=50, webp=60)
    )
    by_format = {e.format: e.quality for e in resolve_formats(spec, has_alpha=False)}
    assert by_format["jpeg"] == 50 and by_format["webp"] == 60
    assert by_format["avif"] == calibration.quality_for("avif", spec.target, 320)


def test_a_target_outside_the_metrics_useful_range_is_refused_by_name() -> None:
    for wrong in (10, 99):
        with pytest.raises(ValidationError, match="target"):
            RenditionSpec(name="t", folder="t", width=1, height=1, target=wrong)


def test_a_new_calibration_changes_the_config_version_so_reprocess_finds_the_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = DEFAULT_CONFIG.version
    curves = {f: dict(c) for f, c in table.CURVES.items()}
    curves["jpeg"][2048] = tuple((q, s + 1) for q, s in curves["jpeg"][2048])
    monkeypatch.setattr(table, "CURVES", curves)
    assert DEFAULT_CONFIG.version != before
    # a config whose every lossy quality is set does not read the table: its version stays
    fixed = DEFAULT_CONFIG.model_copy(
        update={
            "renditions": tuple(
                r.model_copy(update={"quality": Quality(jpeg=80, webp=80, avif=60)})
                for r in DEFAULT_CONFIG.renditions
            )
        }
    )
    version = fixed.version
    monkeypatch.setattr(table, "CURVES", {})
    assert fixed.version == version
