"""The WebP encoder measurements' own arithmetic: SSIM, reading curves at equal quality, and
the latency bound. Pure functions on small arrays and hand-made rows; no timing asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import summary
from benchmarks.corpus import Input
from benchmarks.encoders import at_equal_quality, ssim, tradeoff_inputs

pytestmark = pytest.mark.integration


def _noisy(x: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y: np.ndarray = np.clip(x + rng.normal(0, sigma, x.shape), 0, 255)
    return y


def test_ssim_is_one_for_identical_images_and_falls_with_noise() -> None:
    x = np.tile(np.linspace(0, 255, 64), (48, 1))
    assert ssim(x, x) == pytest.approx(1.0)
    light, heavy = _noisy(x, 4), _noisy(x, 40)
    assert 1.0 > ssim(x, light) > ssim(x, heavy) > 0
    assert ssim(x, light) == pytest.approx(ssim(light, x))  # symmetric


def test_ssim_of_two_flat_images_is_the_luminance_term() -> None:
    # No variance anywhere: SSIM reduces to (2ab + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 100.0, 140.0, (0.01 * 255) ** 2
    x, y = np.full((10, 12), a), np.full((10, 12), b)
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))


def test_ssim_refuses_mismatched_or_tiny_images() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="smaller than"):
        ssim(np.zeros((6, 20)), np.zeros((6, 20)))


def _row(effort: int, quality: int, ssim_: float, kb: float, cpu: float) -> dict[str, Any]:
    return {"effort": effort, "quality": quality, "ssim": ssim_, "bytes": kb * 1024, "cpu_ms": cpu}


def test_equal_quality_interpolates_each_effort_at_the_reference_ssim() -> None:
    rows = [
        _row(4, 75, 0.970, 90, 400),
        _row(4, 80, 0.980, 100, 400),
        _row(2, 80, 0.970, 105, 200),
        _row(2, 85, 0.990, 125, 220),
    ]
    by_effort = {e["effort"]: e for e in at_equal_quality(rows, 4, 80)}
    assert by_effort[4]["bytes_ratio"] == pytest.approx(1.0)
    # Effort 2 reaches 0.980 halfway between its q80 and q85 points.
    assert by_effort[2]["quality"] == pytest.approx(82.5)
    assert by_effort[2]["bytes_ratio"] == pytest.approx(115 / 100)
    assert by_effort[2]["cpu_ratio"] == pytest.approx(210 / 400)


def test_equal_quality_says_none_outside_the_measured_range() -> None:
    rows = [_row(4, 80, 0.99, 100, 400), _row(2, 70, 0.95, 80, 200), _row(2, 75, 0.96, 85, 200)]
    by_effort = {e["effort"]: e for e in at_equal_quality(rows, 4, 80)}
    assert by_effort[2]["bytes_ratio"] is None and by_effort[2]["quality"] is None
    assert at_equal_quality(rows, 6, 80) == []  # no reference measured


def _input(name: str, kind: str, mp: float = 1.0) -> Input:
    side = int((mp * 1e6) ** 0.5)
    return Input(Path(name), name, kind, kind, side, side, 1000)


def test_bound_is_the_floor_decode_plus_libvips_webp_over_pillow() -> None:
    inputs = [_input("a.jpg", "jpeg"), _input("b.png", "png")]

    def med(wall: float, decode: float = 0.0) -> dict[str, Any]:
        return {"ok": True, "wall_ms": wall, "cpu_ms": wall, "stages_ms": {"decode": decode}}

    medians = {
        "pillow": {"a.jpg": med(100), "b.png": med(20)},
        "floor": {"a.jpg": med(90, decode=10), "b.png": med(25, decode=2)},
        "engine": {"a.jpg": med(95), "b.png": med(30)},
    }

    def enc(libvips_ms: float, pillow_ms: float, same_bytes: bool) -> dict[str, Any]:
        sizes = {"libvips_bytes": 7, "pillow_bytes": 7 if same_bytes else 8}
        return {"ok": True, "libvips_ms": libvips_ms, "pillow_ms": pillow_ms, **sizes}

    webp = {"a.jpg": enc(60, 50, same_bytes=True), "b.png": enc(4, 3, same_bytes=False)}
    b = summary.bounds(inputs, medians, webp, encoder="libvips")
    assert b["jpeg"]["bound_ms"] == 70 and b["jpeg"]["bound_ratio"] == pytest.approx(0.7)
    assert b["png"]["bound_ms"] == 6 and b["png"]["identical_bytes"] == 0
    assert b["all"]["bound_ratio"] == pytest.approx(76 / 120)
    assert b["all"]["identical_bytes"] == 1 and b["all"]["engine_wall_ms"] == pytest.approx(62.5)
    assert summary.bounds(inputs, {"engine": medians["engine"]}, webp) == {}
    # With Pillow's libwebp (what the engine uses when it is there) the bound takes its time.
    with_pillow = summary.bounds(inputs, medians, webp, encoder="pillow")
    assert with_pillow["jpeg"]["bound_ms"] == 60 and with_pillow["jpeg"]["encoder"] == "pillow"
    assert with_pillow["jpeg"]["engine_bound_ratio"] == pytest.approx(95 / 60)


def test_tradeoff_takes_photos_biggest_first() -> None:
    inputs = [
        _input("small.jpg", "jpeg", 0.1),
        _input("flag.png", "png", 9.0),
        _input("huge.jpg", "large", 100),
        _input("mid.jpg", "jpeg", 2),
    ]
    assert [i.name for i in tradeoff_inputs(inputs, 2)] == ["huge.jpg", "mid.jpg"]
