"""One image's time budget, checked between the engine's steps and enforced inside libvips."""

from __future__ import annotations

import math
import time
from typing import Any

import pyvips

from processor.core.errors import TimeBudgetExceeded


class TimeBudget:
    """``watch`` turns on progress signals for an image about to be computed; libvips emits
    ``eval`` once per work unit (a tile or a strip), and past the deadline the handler sets
    the image's kill flag, so libvips stops at the next work unit and the computation raises.
    ``check`` is the same test between steps. Calls into an encoder library that libvips
    cannot interrupt (libwebp, libaom once the pixels are ready) end before the check runs.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._ends = math.inf if seconds is None else time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._ends

    def share_left(self) -> float:
        """The share of the budget still left (1.0 without a budget)."""
        if self.seconds is None:
            return 1.0
        return max(0.0, self._ends - time.monotonic()) / self.seconds

    def watch(self, image: pyvips.Image) -> pyvips.Image:
        if self.seconds is not None:
            image.set_progress(True)
            image.signal_connect("eval", self._on_eval)
        return image

    def _on_eval(self, image: pyvips.Image, _progress: Any) -> None:
        if self.expired:
            image.set_kill(True)

    def check(self, step: str) -> None:
        if self.expired:
            raise self.exceeded(step)

    def exceeded(self, step: str) -> TimeBudgetExceeded:
        return TimeBudgetExceeded(
            f"stopped while {step}: the image took longer than its time budget of "
            f"{self.seconds:g} s; a function with more memory (and so more CPU) or a larger "
            "budget may finish it (then reprocess it)"
        )


UNLIMITED = TimeBudget(None)
