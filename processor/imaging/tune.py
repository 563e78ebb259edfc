"""The quality of an ``auto`` rendition, searched on the image itself (part of the encode step).

The calibration table gives the quality that meets the target for the median photo; a busy
photo needs more, a smooth one less. ``tune`` searches each image's own: every trial encodes a
reduced copy (the rendition's pixels at most ``REDUCED`` px on the long side), decodes it and
scores it (processor/imaging/score.py) against the reduced pixels, at most
``rules.tune.MAX_TRIALS`` of them (processor/rules/tune.py). A reduced copy scores differently
from the rendition (downscaling hides artefacts, and hides each encoder's differently), so the
search aims at the target less that format's measured offset (core/auto_offsets.py, written
by ``python -m benchmarks.auto_quality``).

The search spends time the image's budget may not have: with less than ``MIN_BUDGET_LEFT`` of
it left (before the search or between trials) the calibrated quality is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pyvips

from processor.core import auto_offsets
from processor.core.encoders import ENCODERS
from processor.imaging.budget import TimeBudget
from processor.imaging.pixels import Held, hold
from processor.imaging.score import MIN_SIDE, ssimulacra2
from processor.rules import tune as rules
from processor.rules.plan import Encode

REDUCED = 512  # long side of the copy the trials encode, in pixels
# The share of the image's time budget that must be left to start (or go on with) a search.
MIN_BUDGET_LEFT = 0.5

Save = Callable[[pyvips.Image, Held, Encode], bytes]


def reduced(image: pyvips.Image) -> Held:
    """The image at most ``REDUCED`` px on the long side, held (every trial reads it)."""
    long_side = max(image.width, image.height)
    if long_side > REDUCED:
        image = image.resize(REDUCED / long_side, kernel="lanczos3")
    return hold(image)


def offset(fmt: str) -> float:
    """Score points the rendition reads above its reduced copy at the same setting."""
    return auto_offsets.OFFSETS.get(fmt, 0.0)


def tune(
    image: pyvips.Image, enc: Encode, target: float, save: Save, budget: TimeBudget
) -> rules.Found:
    """The setting of ``enc.format`` whose file of ``image`` (already flattened for a format
    without alpha) scores about ``target``; ``enc.quality`` (the calibrated setting) when the
    budget is short or the image too small to score."""
    if budget.share_left() < MIN_BUDGET_LEFT:
        return rules.Found(enc.quality, None, 0)
    held = reduced(image)
    small = held.image
    if small.width < MIN_SIDE or small.height < MIN_SIDE:
        return rules.Found(enc.quality, None, 0)

    def trial(quality: int) -> float:
        data = save(small.copy(), held, replace(enc, quality=quality))
        return ssimulacra2(small, pyvips.Image.new_from_buffer(data, ""))

    s = ENCODERS[enc.format].quality
    return rules.search(
        trial,
        target - offset(enc.format),
        enc.quality,
        s.low,
        s.high,
        go_on=lambda: budget.share_left() >= MIN_BUDGET_LEFT,
    )
