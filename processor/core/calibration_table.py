"""The calibration table: median SSIMULACRA2 score per quality setting, per lossy format
and output size. Written by `python -m benchmarks.calibrate`; do not edit by hand.

core/calibration.py inverts it (target score -> quality setting).
"""

from __future__ import annotations

METRIC = "ssimulacra2"
SCORER = "libjxl tools/ssimulacra2 (reference binary)"
PHOTOS = 14  # real photos measured (benchmarks/calibrate.py PHOTOS)
LIBVIPS = "8.18.7"
EFFORTS = {
    "jpeg_effort": 2,
    "webp_effort": 4,
    "avif_effort": 2,
}  # the effort settings the curves hold for
# Median score of the settings the engine used before the calibration (quality, effort):
# jpeg 82/0, webp 80/4, avif 55/2.
BEFORE: dict[str, dict[int, float]] = {
    "jpeg": {320: 78.55, 2048: 79.8},
    "webp": {320: 76.84, 2048: 73.3},
    "avif": {320: 70.5, 2048: 71.27},
}
# format -> output box (long side, px) -> ((quality setting, median score), ...)
CURVES: dict[str, dict[int, tuple[tuple[int, float], ...]]] = {
    "avif": {
        320: (
            (35, 48.74),
            (45, 61.68),
            (55, 70.5),
            (60, 75.5),
            (65, 78.3),
            (70, 81.62),
            (80, 85.59),
        ),
        2048: (
            (35, 46.62),
            (45, 62.45),
            (55, 71.27),
            (60, 75.23),
            (65, 77.2),
            (70, 80.13),
            (80, 84.49),
        ),
    },
    "jpeg": {
        320: (
            (50, 60.57),
            (60, 65.4),
            (70, 70.55),
            (78, 74.48),
            (85, 79.0),
            (90, 85.36),
            (95, 89.54),
        ),
        2048: (
            (50, 59.83),
            (60, 64.6),
            (70, 70.83),
            (78, 75.83),
            (85, 79.82),
            (90, 85.44),
            (95, 88.77),
        ),
    },
    "webp": {
        320: (
            (50, 63.66),
            (60, 67.44),
            (70, 71.03),
            (78, 75.64),
            (85, 80.8),
            (90, 85.28),
            (95, 88.23),
        ),
        2048: (
            (50, 60.77),
            (60, 64.73),
            (70, 67.3),
            (78, 71.75),
            (85, 77.64),
            (90, 82.0),
            (95, 86.32),
        ),
    },
}
