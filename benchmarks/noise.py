"""How busy the rest of the machine was while we measured.

Other processes competing for the two cores slow every implementation, but not alike: the
one that spreads an image over both cores loses most. So the harness measures the machine's
busy CPU time around each sample (``/proc/stat``) and subtracts the measured process's own:
what remains is foreign load, reported next to the results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_seconds() -> float | None:
    """CPU seconds the machine has spent busy (all cores; steal counts as busy)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


@dataclass
class Meter:
    """Sums busy, own-CPU and wall seconds over many samples."""

    busy_s: float = 0.0
    own_s: float = 0.0
    wall_s: float = 0.0
    _start: float | None = None

    def start(self) -> None:
        self._start = busy_seconds()

    def stop(self, own_cpu_s: float, wall_s: float) -> None:
        end = busy_seconds()
        if self._start is not None and end is not None:
            self.busy_s += end - self._start
            self.own_s += own_cpu_s
            self.wall_s += wall_s
        self._start = None

    @property
    def foreign_cores(self) -> float | None:
        """Cores' worth of CPU that other processes used while we measured (0 = quiet)."""
        if not self.wall_s:
            return None
        return max(0.0, (self.busy_s - self.own_s) / self.wall_s)
