"""``python -m benchmarks.readme``: the README's speed table, from the last run's targets.

Every target of benchmarks/summary.py, met or not, as ``make bench`` last measured it
(benchmarks/results/results.json), with the reason for each miss from ``WHY``. The table sits
between two markers in README.md; tests/benchmarks/test_readme.py fails when it is not what
this writes, so the README never shows numbers the results do not hold.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results" / "results.json"
BEGIN = "<!-- speed targets: written by python -m benchmarks.readme -->"
END = "<!-- end of speed targets -->"

# Why a target is missed, by target name: what the measurements in docs/benchmarks.md found.
WHY: dict[str, str] = {
    "latency engine/bound, all": (
        "the 2048 px WebP runs slower while the smaller encodes and the placeholder share "
        "the cores (31-38 ms against 28-32 ms alone), and the input is hashed before decoding"
    ),
    "cost/1000 engine (configured) / Pillow (best), arm64": (
        "billed time follows latency: under 1% short, the latency/bound miss above"
    ),
    "cost/1000 engine (configured) / Pillow (best), x86_64": (
        "billed time follows latency: under 1% short, the latency/bound miss above"
    ),
    "latency engine/Pillow, photos (all)": (
        "decode plus the one 2048 px WebP alone is about 0.65x Pillow on these photos: no "
        "libvips implementation reaches 0.52x at these encoder settings"
    ),
}


def _number(value: float, unit: str, digits: int = 2) -> str:
    return f"{value:.{digits}f}x" if unit == "x" else f"{value:.0f} {unit}"


def _row(target: Mapping[str, Any], why: Mapping[str, str]) -> str:
    unit = str(target.get("unit", "x"))
    measured = target.get("measured")
    limit = float(target["limit"])
    shown = "–"
    if measured is not None:
        # 0.902 against 0.90 would read "0.90x, MISS": more digits say by how much.
        for digits in (2, 3, 4):
            shown = _number(float(measured), unit, digits)
            if shown != _number(limit, unit, digits) or float(measured) == limit:
                break
    sign = "≥" if target.get("higher_is_better") else "≤"
    status = str(target.get("status", "n/a"))
    reason = "" if status == "PASS" else why.get(str(target["name"]), "")
    result = f"**{status}**" if status == "MISS" else status
    goal = f"{sign} {_number(limit, unit)}"
    return f"| {target['name']} | {shown} | {goal} | {result} | {reason} |"


def table(targets: Sequence[Mapping[str, Any]], why: Mapping[str, str] = WHY) -> str:
    head = [
        "| target | measured | goal | result | why not met |",
        "| --- | --- | --- | --- | --- |",
    ]
    return "\n".join(head + [_row(t, why) for t in targets])


def block(results: Mapping[str, Any]) -> str:
    return f"{BEGIN}\n{table(results['targets'])}\n{END}"


def rewrite(readme: str, results: Mapping[str, Any]) -> str:
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[:start] + block(results) + readme[end:]


def main() -> int:
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    README.write_text(rewrite(README.read_text(encoding="utf-8"), results), encoding="utf-8")
    print(f"wrote the speed table of {README.name} from {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
