"""The quality search of ``auto`` renditions: pure, a trial is a function handed in.

A trial encodes (a reduced copy of) the rendition at one quality setting and returns its
score; the search starts at the calibrated setting and narrows a bracket by secant steps
(bisection when the last two trials fell on the same side of the target), for the lowest
setting whose score reaches the target, in at most ``max_trials`` trials. Scores rise with
the quality setting (the calibration table's curves do), so the bracket only shrinks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

MAX_TRIALS = 6
# A first step without a slope to go by: settings per score point (the calibration curves
# rise about 0.5-1 point per setting between 60 and 90).
FIRST_SLOPE = 1.5


@dataclass(frozen=True)
class Found:
    quality: int
    score: float | None  # the trial's score at ``quality``; None: never tried (no trial ran)
    trials: int


def search(
    trial: Callable[[int], float],
    target: float,
    start: int,
    low: int,
    high: int,
    *,
    max_trials: int = MAX_TRIALS,
    tolerance: float = 0.5,
    go_on: Callable[[], bool] = lambda: True,
) -> Found:
    """The lowest setting in ``low..high`` whose trial reaches ``target`` (the highest tried
    when none does). Stops early when a trial lands within ``tolerance`` above the target,
    when the bracket closes, after ``max_trials`` trials, or when ``go_on()`` says so before a
    trial (then with what the trials so far found, ``start`` if none)."""
    start = max(low, min(high, start))
    tried: dict[int, float] = {}
    below, above = low - 1, high + 1  # the bracket: below misses the target, above reaches it
    q = start
    while len(tried) < max_trials and go_on():
        s = tried[q] = trial(q)
        if s >= target:
            above = q
            if s - target <= tolerance:
                break
        else:
            below = q
        if above - below <= 1:
            break
        q = _next(tried, target, below, above, low, high)
    return _best(tried, target, start)


def _next(
    tried: dict[int, float], target: float, below: int, above: int, low: int, high: int
) -> int:
    """The next setting inside the open bracket (``below``, ``above``): where the line through
    its two ends meets the target (while one end is open, the line through the last two
    trials, or ``FIRST_SLOPE`` after the first), half-way when the last two trials fell on the
    same side (the line then converges slowly: a curve flattening near 100 or bending near
    the floor)."""
    first, last = below + 1, above - 1
    order = list(tried)
    ends = [q for q in (below, above) if q in tried]
    if len(ends) == 2:
        (q0, q1), (s0, s1) = ends, (tried[ends[0]], tried[ends[1]])
        guess = q0 + (target - s0) * (q1 - q0) / (s1 - s0) if s1 > s0 else (q0 + q1) / 2
        if len(order) >= 2 and (tried[order[-1]] >= target) == (tried[order[-2]] >= target):
            guess = (q0 + q1) / 2
    elif len(order) >= 2 and tried[order[-1]] != tried[order[-2]]:  # extrapolate the line
        (q0, q1), (s0, s1) = order[-2:], (tried[order[-2]], tried[order[-1]])
        guess = q0 + (target - s0) * (q1 - q0) / (s1 - s0)
    else:
        (q0,) = ends
        guess = q0 + (target - tried[q0]) * FIRST_SLOPE
    q = math.ceil(guess - 1e-9)  # the lowest setting the line says reaches the target
    return max(first, min(last, max(low, min(high, q))))


def _best(tried: dict[int, float], target: float, start: int) -> Found:
    if not tried:
        return Found(start, None, 0)
    reaching = [q for q, s in tried.items() if s >= target]
    q = min(reaching) if reaching else max(tried)
    return Found(q, tried[q], len(tried))
