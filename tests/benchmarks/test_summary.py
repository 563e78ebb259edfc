"""The benchmark summary on plain numbers: targets, cost per CPU share, peak RSS per kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import cost, summary

pytestmark = pytest.mark.unit


def test_cost_follows_lambda_cpu_share() -> None:
    prices = cost.Prices()
    images = [(100.0, 180.0)]  # 100 ms wall on 2 cores, 180 ms of CPU
    # At 1769 MB (one vCPU) the CPU bounds the duration; at 3538 MB the wall does.
    assert cost.estimate(images, 1769, 50, prices).ms_per_image == 180
    assert cost.estimate(images, 3538, 50, prices).ms_per_image == 100
    e = cost.estimate(images, 1024, 50, prices)
    assert e.gb_s_per_1000 == pytest.approx(e.ms_per_image / 1000 * 1.0 * 1000)
    assert e.usd_per_1000["arm64"] == pytest.approx(e.gb_s_per_1000 * 0.0000133334 + 0.0002)
    assert not cost.estimate(images, 128, 200, prices).fits
    best = cost.best(images, peak_rss_mb=200, prices=prices)
    assert best.fits and best.memory_mb >= 220


def test_target_says_by_how_much() -> None:
    assert summary.Target("t", 0.66, 0.55).status == "MISS"
    assert summary.Target("t", 0.66, 0.55).margin == "20% over"
    assert summary.Target("t", 1.56, 1.3, higher_is_better=True).margin == "20% to spare"
    assert summary.Target("t", None, 1.0).status == "n/a"


def test_peak_rss_per_kind_compares_engine_and_pillow_where_the_floor_cannot_decode() -> None:
    from benchmarks.corpus import Input

    def made(name: str, kind: str) -> Input:
        return Input(Path(name), name, kind, kind, 100, 100, 1000)

    def peak(mb: float, ok: bool = True) -> dict[str, Any]:
        return {"ok": ok, "peak_rss_mb": mb, "base_rss_mb": 50.0}

    inputs = [made("a.heic", "heic"), made("b.jpg", "jpeg")]
    memory = {
        "engine": {"a.heic": peak(300), "b.jpg": peak(90)},
        "pillow": {"a.heic": peak(400), "b.jpg": peak(100)},
        # The bare pyvips floor has no HEVC decoder.
        "floor": {"a.heic": peak(0, ok=False), "b.jpg": peak(80)},
    }
    by_kind = summary.memory_by_kind(inputs, memory)
    assert by_kind["heic"] == {"engine": 300, "pillow": 400}
    assert by_kind["jpeg"] == {"engine": 90, "pillow": 100, "floor": 80}
    assert summary.memory_by_kind(inputs, memory, above_base=True)["heic"]["engine"] == 250
    # An input Pillow failed is compared by nobody.
    memory["pillow"]["b.jpg"] = peak(0, ok=False)
    assert "jpeg" not in summary.memory_by_kind(inputs, memory)
