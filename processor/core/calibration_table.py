"""The calibration table: median SSIMULACRA2 score per quality setting, per lossy format
and output size. Written by `python -m benchmarks.calibrate`; do not edit by hand.

core/calibration.py inverts it (target score -> quality setting).
"""

from __future__ import annotations

METRIC = "ssimulacra2"
SCORER = "libjxl tools/ssimulacra2 (reference binary)"
PHOTOS = 24  # real photos measured (benchmarks/calibrate.py photo_set)
LIBVIPS = "8.18.7"
EFFORTS = {
    "jpeg_effort": 2,
    "webp_effort": 4,
    "avif_effort": 3,
}  # the effort settings the curves hold for
# Median score of the settings the engine used before the calibration (quality, effort):
# jpeg 82/0, webp 80/4, avif 55/2.
BEFORE: dict[str, dict[int, float]] = {
    "jpeg": {320: 79.22, 2048: 80.03},
    "webp": {320: 77.57, 2048: 72.7},
    "avif": {320: 71.84, 2048: 72.5},
}
# format -> output box (long side, px) -> ((quality setting, median score), ...)
CURVES: dict[str, dict[int, tuple[tuple[int, float], ...]]] = {
    "avif": {
        320: (
            (35, 52.53),
            (45, 62.75),
            (55, 71.46),
            (60, 76.71),
            (65, 78.69),
            (70, 82.01),
            (80, 85.72),
        ),
        2048: (
            (35, 49.78),
            (45, 63.8),
            (55, 72.46),
            (60, 75.52),
            (65, 77.27),
            (70, 80.13),
            (80, 84.64),
        ),
    },
    "jpeg": {
        320: (
            (50, 61.64),
            (60, 66.24),
            (70, 71.36),
            (78, 75.67),
            (85, 79.68),
            (90, 85.79),
            (95, 89.79),
        ),
        2048: (
            (50, 59.92),
            (60, 64.6),
            (70, 70.81),
            (78, 75.83),
            (85, 79.82),
            (90, 85.8),
            (95, 89.02),
        ),
    },
    "webp": {
        320: (
            (50, 64.76),
            (60, 68.35),
            (70, 71.09),
            (78, 75.64),
            (85, 80.94),
            (90, 84.66),
            (95, 87.96),
        ),
        2048: (
            (50, 60.77),
            (60, 64.73),
            (70, 67.3),
            (78, 71.04),
            (85, 77.19),
            (90, 82.35),
            (95, 86.32),
        ),
    },
}
