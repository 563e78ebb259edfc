"""The README's speed table is what the last `make bench` measured, every target, met or not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks import readme

pytestmark = pytest.mark.unit


def test_the_readme_table_is_the_last_runs_targets() -> None:
    results = json.loads(readme.RESULTS.read_text(encoding="utf-8"))
    text = readme.README.read_text(encoding="utf-8")
    assert readme.block(results) in text, "run python -m benchmarks.readme after make bench"
    names = [t["name"] for t in results["targets"]]
    assert len(names) >= 10 and all(f"| {n} |" in text for n in names)


def test_every_missed_target_says_why() -> None:
    results = json.loads(readme.RESULTS.read_text(encoding="utf-8"))
    missed = [t["name"] for t in results["targets"] if t["status"] == "MISS"]
    assert [n for n in missed if not readme.WHY.get(n)] == []


def test_a_row_shows_the_measure_the_goal_and_the_reason() -> None:
    targets: list[dict[str, Any]] = [
        {"name": "CPU x", "measured": 1.012, "limit": 0.95, "status": "MISS", "unit": "x"},
        {"name": "jobs", "measured": 1.25, "limit": 1.08, "status": "PASS", "unit": "x",
         "higher_is_better": True},
        {"name": "import", "measured": 84.6, "limit": 400, "status": "PASS", "unit": "ms"},
        {"name": "heic", "measured": None, "limit": 1.0, "status": "n/a", "unit": "x"},
        {"name": "close", "measured": 0.9021, "limit": 0.9, "status": "MISS", "unit": "x"},
    ]  # fmt: skip
    rows = readme.table(targets, {"CPU x": "the decode", "jobs": "never shown"}).splitlines()
    assert rows[2] == "| CPU x | 1.01x | ≤ 0.95x | **MISS** | the decode |"
    assert rows[3] == "| jobs | 1.25x | ≥ 1.08x | PASS |  |"
    assert rows[4] == "| import | 85 ms | ≤ 400 ms | PASS |  |"
    assert rows[5] == "| heic | – | ≤ 1.00x | n/a |  |"
    # Rounded to the goal, a miss would read as met: shown with one more digit.
    assert rows[6] == "| close | 0.902x | ≤ 0.90x | **MISS** |  |"
