"""The calibration table: median SSIMULACRA2 score per quality setting, per lossy format
and output size. Written by `python -m benchmarks.calibrate`; do not edit by hand.

core/calibration.py inverts it (target score -> quality setting).
"""

from __future__ import annotations

METRIC = "ssimulacra2"
SCORER = "benchmarks/ssim2port.py (NumPy port of libjxl 0.11.2 tools/ssimulacra2.cc)"
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
    "jpeg": {320: 78.57, 2048: 80.99},
    "webp": {320: 76.94, 2048: 73.74},
    "avif": {320: 70.49, 2048: 72.1},
}
# format -> output box (long side, px) -> ((quality setting, median score), ...)
CURVES: dict[str, dict[int, tuple[tuple[int, float], ...]]] = {
    "avif": {
        320: (
            (35, 48.77),
            (45, 61.67),
            (55, 70.49),
            (60, 75.47),
            (65, 78.31),
            (70, 81.64),
            (80, 85.64),
        ),
        2048: (
            (35, 46.62),
            (45, 62.5),
            (55, 72.1),
            (60, 75.53),
            (65, 77.58),
            (70, 80.73),
            (80, 85.59),
        ),
    },
    "jpeg": {
        320: (
            (50, 60.58),
            (60, 65.4),
            (70, 70.55),
            (78, 74.5),
            (85, 79.01),
            (90, 85.47),
            (95, 89.9),
        ),
        2048: (
            (50, 59.97),
            (60, 64.79),
            (70, 71.05),
            (78, 76.39),
            (85, 80.9),
            (90, 86.72),
            (95, 90.71),
        ),
    },
    "webp": {
        320: (
            (50, 63.66),
            (60, 67.44),
            (70, 71.02),
            (78, 75.67),
            (85, 81.42),
            (90, 85.54),
            (95, 88.45),
        ),
        2048: (
            (50, 60.88),
            (60, 65.02),
            (70, 68.02),
            (78, 72.44),
            (85, 79.25),
            (90, 83.88),
            (95, 87.35),
        ),
    },
}
