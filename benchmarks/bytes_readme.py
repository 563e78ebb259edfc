"""The README's bytes-and-cost table, from benchmarks/results/bytes.json.

``python -m benchmarks.bytes`` writes it between two markers in README.md;
tests/benchmarks/test_bytes.py fails when the README is not what the last run's results say.
No libvips here: the unit tests read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bytes.json"
FORMATS = ("jpeg", "webp", "avif")
README = ROOT / "README.md"
BEGIN = "<!-- bytes: written by python -m benchmarks.bytes -->"
END = "<!-- end of bytes -->"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "**MISS**"


def readme_block(summary: dict[str, Any]) -> str:
    """The README's bytes-and-cost table: the goals of the quality target, met or not."""
    t = summary["target"]
    rows = []
    sets = [("", summary)]
    held = summary.get("holdout")
    if held:
        sets.append((f", {len(held['photos'])} photos the calibration never saw", held))
    for which, s in sets:
        scores = [s["shipped"].get(f"{f} 2048", {}).get("median") for f in FORMATS]
        if all(v is not None for v in scores):
            within = all(abs(v - t) <= 2 for v in scores)
            shown = " / ".join(f"{v}" for v in scores)
            rows.append(
                f"| median score at 2048 px{which}, {' / '.join(f.upper() for f in FORMATS)} "
                f"| {shown} | {t:g} ± 2 | {_verdict(within)} |"
            )
    jpeg = summary["before"].get("jpeg 2048", {}).get("total")
    if jpeg is not None:
        rows.append(
            f"| JPEG bytes now / before (q82 baseline), equal score, 2048 px | {jpeg}x "
            f"| ≤ 0.85x | {_verdict(jpeg <= 0.85)} |"
        )
    avif = summary["avif/jpeg"]["both"]["total"]
    if avif is not None:
        rows.append(
            f"| AVIF / JPEG bytes at the target, both sizes | {avif}x | ≤ 0.6x "
            f"| {_verdict(avif <= 0.6)} |"
        )
    before = summary.get("avif/before jpeg", {}).get("both", {})
    if before.get("total") is not None:
        rows.append(
            "| AVIF / the JPEG before (q82 baseline) bytes at its score, both sizes: total "
            f"(median) | {before['total']}x ({before['median']}x) | ≤ 0.6x "
            f"| {_verdict(before['total'] <= 0.6)} |"
        )
    for theirs in ("jpeg", "webp"):
        r = summary["sharp"].get(f"avif (ours) / sharp {theirs}", {}).get("total")
        if r is not None:
            rows.append(
                f"| AVIF a browser downloads / sharp's default {theirs.upper()}, same sizes "
                f"and score | {r}x | ≤ 0.6x | {_verdict(r <= 0.6)} |"
            )
    cost = summary.get("ladder_cost")
    if cost:
        b, d = cost["before"], cost["default"]
        rows.append(
            f"| billed ms per 1,000 images, default ladder (scored) / before "
            f"({cost['memory_mb']} MB) | {d['billed_ms_per_1000']:,} / "
            f"{b['billed_ms_per_1000']:,} = {cost['billed_ratio']}x "
            "| none: the bytes and scores it buys | - |"
        )
        u = cost.get("unscored")
        if u:
            rows.append(
                "| billed ms per 1,000 images, default ladder with every rendition scored / "
                f"scoring off | {d['billed_ms_per_1000']:,} / {u['billed_ms_per_1000']:,} = "
                f"{round(d['billed_ms_per_1000'] / u['billed_ms_per_1000'], 2)}x "
                "| none: what the scores cost | - |"
            )
    head = ["| goal | measured | target | result |", "| --- | --- | --- | --- |"]
    return "\n".join([BEGIN, *head, *rows, END])


def update(summary: dict[str, Any], readme: Path = README) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    readme.write_text(text[:start] + readme_block(summary) + text[end:], encoding="utf-8")


def last_summary(results: Path = RESULTS) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(results.read_text(encoding="utf-8"))["summary"]
    return summary
