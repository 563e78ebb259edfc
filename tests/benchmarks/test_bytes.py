"""The bytes benchmark: the README shows what its last run measured."""

from __future__ import annotations

import pytest

from benchmarks import bytes_readme

pytestmark = pytest.mark.unit


def test_the_readme_bytes_table_is_the_last_runs() -> None:
    summary = bytes_readme.last_summary()
    text = bytes_readme.README.read_text(encoding="utf-8")
    assert bytes_readme.readme_block(summary) in text, "run python -m benchmarks.bytes"
    # every goal of the quality target is there, met or not
    for goal in ("median score at 2048 px", "JPEG bytes now / before", "AVIF / JPEG bytes"):
        assert goal in text
    assert "billed ms per 1,000 images" in text


def test_a_goal_says_pass_or_miss_from_the_numbers() -> None:
    summary = bytes_readme.last_summary()
    summary = {
        **summary,
        "avif/jpeg": {"both": {"total": 0.7}},
        "before": {"jpeg 2048": {"total": 0.8}},
    }
    block = bytes_readme.readme_block(summary)
    assert "| AVIF / JPEG bytes at the target, both sizes | 0.7x | ≤ 0.6x | **MISS** |" in block
    assert "equal score, 2048 px | 0.8x | ≤ 0.85x | PASS |" in block


def test_the_photos_the_calibration_never_saw_have_their_own_verdict() -> None:
    summary = bytes_readme.last_summary()
    shipped = {
        f"{f} 2048": {"median": m} for f, m in zip(bytes_readme.FORMATS, (80, 81, 77), strict=True)
    }
    block = bytes_readme.readme_block(
        {**summary, "holdout": {"photos": ["a.jpg", "b.jpg"], "shipped": shipped}}
    )
    assert (
        "| median score at 2048 px, 2 photos the calibration never saw, JPEG / WEBP / AVIF "
        in block
    )
    assert "| 80 / 81 / 77 | 80 ± 2 | **MISS** |" in block
    without = bytes_readme.readme_block({k: v for k, v in summary.items() if k != "holdout"})
    assert "never saw" not in without
