"""From a perceptual target to each format's quality setting, read off the measured table.

Every lossy rendition aims at one SSIMULACRA2 score (the rendition's ``target``, core/config.py)
whatever its format. How high a format's quality setting must be to reach a score was
measured on a photo corpus by ``python -m benchmarks.calibrate``, which writes
core/calibration_table.py: per format and per output size, the median score of the corpus at
each quality setting tried. This module inverts that curve. No number here is typed by hand.

A score depends on the output size (a 320 px thumbnail hides less than a 2048 px photo), so
a rendition reads the curve measured at the size nearest its own (on a log scale).
"""

from __future__ import annotations

import hashlib
import json
import math

from processor.core import calibration_table as table

# The metric the targets and the table are in.
METRIC = table.METRIC


def fingerprint() -> str:
    """Short hash of the curves: what the calibrated settings are read off."""
    payload = json.dumps({f: {str(k): v for k, v in c.items()} for f, c in table.CURVES.items()})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def sizes(fmt: str) -> tuple[int, ...]:
    """The output sizes (long side, pixels) the table measured ``fmt`` at."""
    return tuple(sorted(table.CURVES[fmt]))


def nearest_size(fmt: str, long_side: int) -> int:
    return min(sizes(fmt), key=lambda s: abs(math.log(s) - math.log(max(1, long_side))))


def curve(fmt: str, long_side: int) -> tuple[tuple[int, float], ...]:
    """(quality setting, median score) pairs, by rising quality, at the nearest size."""
    return tuple(sorted(table.CURVES[fmt][nearest_size(fmt, long_side)]))


def quality_for(fmt: str, target: float, long_side: int, low: int = 1, high: int = 100) -> int:
    """The lowest quality setting whose median score reaches ``target``: linear between two
    measured points, rounded up; the highest measured setting when none reaches it, the
    lowest when every one does. Clamped to ``low``..``high``."""
    if fmt not in table.CURVES:
        raise KeyError(f"{fmt} is not in the calibration table; run python -m benchmarks.calibrate")
    points = curve(fmt, long_side)
    if target <= points[0][1]:
        q = float(points[0][0])
    else:
        q = float(points[-1][0])
        for (q0, s0), (q1, s1) in zip(points, points[1:], strict=False):
            if s1 >= target:
                q = q1 if s1 == s0 else q0 + (q1 - q0) * (target - s0) / (s1 - s0)
                break
    return max(low, min(high, math.ceil(q - 1e-9)))


def score_at(fmt: str, quality: int, long_side: int) -> float:
    """The median score the table expects of ``fmt`` at ``quality`` (linear between points)."""
    points = curve(fmt, long_side)
    if quality <= points[0][0]:
        return points[0][1]
    for (q0, s0), (q1, s1) in zip(points, points[1:], strict=False):
        if quality <= q1:
            return s0 + (s1 - s0) * (quality - q0) / (q1 - q0)
    return points[-1][1]
