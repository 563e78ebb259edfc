"""Measurements of the image tests (sizes, build and start times), for people, not asserts.

Timings on a shared machine are noisy; they are written to out/images/report.json and
printed at the end of the run, and docs/images.md quotes a run of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "out" / "images" / "report.json"


class Report:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.started_at = time.time()

    def add(self, name: str, value: Any) -> None:
        self.values[name] = round(value, 3) if isinstance(value, float) else value

    def write(self) -> None:
        """Adds to what another worker of this run wrote (an older file is replaced)."""
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        merged: dict[str, Any] = {}
        try:
            if REPORT.stat().st_mtime >= self.started_at:
                merged = json.loads(REPORT.read_text())
        except (OSError, ValueError):
            pass
        merged.update(self.values)
        REPORT.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")


def summary(newer_than: float = 0.0) -> list[str]:
    try:
        if REPORT.stat().st_mtime < newer_than:
            return []
        values = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        return []
    width = max((len(k) for k in values), default=0)
    return [f"{key.ljust(width)}  {value}" for key, value in sorted(values.items())]
