"""``python -m benchmarks.bytes``: bytes at equal SSIMULACRA2, per format, against the
engine's settings before the calibration and against sharp, in one run.

On real photos (the first ``--photos`` of benchmarks/calibrate.py PHOTOS and the ten camera
photos of benchmarks/camera.py) at the default
rendition sizes (320 and 2048 px boxes), every encoder is run over a range of qualities on the
same reference pixels and each file scored with SSIMULACRA2 (benchmarks/calibrate.py says
which scorer). For each photo, an encoder's bytes at a given score are read off its own rate
curve (log bytes, linear between the two settings around the score), so two encoders are
compared at equal quality, never at an equal ``Q``:

- **shipped**: the engine's renditions at the calibrated setting for the default target:
  the score each reached (median and spread against the target) and its bytes;
- **against before**: each format's calibrated encoder against the settings the engine used
  before (JPEG q82 baseline, WebP q80, AVIF q55), at the score the old setting reached;
- **AVIF against JPEG** (and WebP), both at the target;
- **against sharp** (npm's prebuilt sharp, benchmarks/sharp/still.js, pinned in its
  package.json): sharp's defaults (JPEG, WebP, AVIF options left alone but the quality) and
  JPEG with ``mozjpeg: true``, at the target; and the total bytes a browser that picks AVIF
  downloads (both sizes) against what sharp's default JPEG and WebP need at the same score;
- **another AV1 encoder**: SVT-AV1 tuned for still images (through libavif, from the
  development dependency pillow-avif-plugin) against the engine's libaom AVIF, at the target.

The same measures are repeated, in their own section, on fourteen camera photos the
calibration never saw (benchmarks/camera.py HOLDOUT), and AVIF / JPEG at other targets.

Writes benchmarks/results/bytes.md (and bytes.json). Scores are cached under
benchmarks/.cache/scores.json (shared with benchmarks.calibrate).

    python -m benchmarks.bytes              # 8 + 10 photos and 14 held out: 75 min on two cores
    python -m benchmarks.bytes --photos 14  # the calibration's whole set
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyvips

from benchmarks import bytes_readme, calibrate
from benchmarks.calibrate import BOXES, GRID, Encoder, Measurer, Row, engine_encoder, photo_set

log = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
SHARP = Path(__file__).resolve().parent / "sharp"
# sharp's encoders as its users call them: the defaults but the quality, and mozjpeg.
SHARP_ENCODERS: dict[str, tuple[str, dict[str, Any], int]] = {
    # label: (format, options, sharp's default quality)
    "sharp jpeg": ("jpeg", {}, 80),
    "sharp jpeg mozjpeg": ("jpeg", {"mozjpeg": True}, 80),
    "sharp webp": ("webp", {}, 80),
    "sharp avif": ("avif", {}, 50),
}
SHARP_GRID: dict[str, tuple[int, ...]] = {
    "jpeg": (70, 80, 88, 95),
    "webp": (70, 80, 88, 95),
    "avif": (50, 60, 70, 80),
}

# Another AV1 encoder on the same pixels: SVT-AV1 through libavif (pillow-avif-plugin's wheel,
# MIT, bundling SVT-AV1 BSD-3-Clause-Clear), tuned for still images (tune 3, "IQ"), at the
# preset whose CPU is nearest libaom's at the table's effort; its quality scale is libavif's.
SVT_OPTIONS: dict[str, Any] = {"codec": "svt", "speed": 4, "advanced": {"tune": "3"}}
SVT_GRID: tuple[int, ...] = (40, 50, 60, 65, 70, 75, 85)
SVT_LABEL = "svt-av1 avif"
OTHER_SCORES = (70.0, 75.0, 82.0)  # AVIF / JPEG at these targets too


def svt_encoder() -> tuple[Encoder, str]:
    """SVT-AV1 (tune IQ) as an encoder, and a tag naming its version and settings."""
    import os

    from pillow_avif import AvifImagePlugin, _avif

    from benchmarks.encoders import to_pillow

    os.environ.setdefault("SVT_LOG", "1")  # errors only: it logs its config per encode

    def run(image: pyvips.Image, quality: int) -> bytes:
        im = to_pillow(image)
        # Its save function called directly: Pillow's own AVIF plugin registers under the
        # same name, and whichever registers last would take Image.save.
        im.encoderinfo = {**SVT_OPTIONS, "quality": quality}
        im.encoderconfig = ()
        out = io.BytesIO()
        AvifImagePlugin._save(im, out, "rendition.avif")
        return out.getvalue()

    versions = str(_avif.codec_versions())
    svt = next((v for v in versions.split(", ") if v.startswith("svt")), versions)
    return run, json.dumps([svt, SVT_OPTIONS])


def sharp_version() -> str:
    """The installed sharp's version (its package.json), installing it when missing."""
    from benchmarks.motion import ensure_sharp

    ensure_sharp()
    package = SHARP / "node_modules" / "sharp" / "package.json"
    return str(json.loads(package.read_text())["version"])


def sharp_files(
    m: Measurer, photos: Sequence[Path]
) -> tuple[dict[tuple[str, str, int], Path], str]:
    """sharp's files for every reference PNG, encoder and quality, in one node process."""
    from benchmarks.motion import run_sharp

    refs = {str(m.ref(p, b)[1]): (p, b) for p in photos for b in BOXES}
    out = Path(tempfile.mkdtemp(prefix="sharp-", dir=m.work))
    job = {
        "files": list(refs),
        "out": str(out),
        "encodes": [
            {"label": label, "format": fmt, "options": opts, "qualities": SHARP_GRID[fmt]}
            for label, (fmt, opts, _q) in SHARP_ENCODERS.items()
        ],
    }
    files: dict[tuple[str, str, int], Path] = {}
    version = ""
    for row in run_sharp("still.js", job):
        version = row["version"]
        photo, box = refs[row["file"]]
        files[(f"{photo}:{box}", row["label"], row["quality"])] = Path(row["path"])
    return files, version


def file_encoder(files: dict[tuple[str, str, int], Path], label: str, m: Measurer) -> Encoder:
    """An 'encoder' that returns the file sharp wrote for these pixels at this quality."""
    by_image: dict[int, str] = {}

    def run(image: pyvips.Image, quality: int) -> bytes:
        if not by_image:
            for (photo, box), (ref, _f) in m.refs.items():
                by_image[id(ref)] = f"{photo}:{box}"
        return files[(by_image[id(image)], label, quality)].read_bytes()

    return run


def at_score(rows: list[Row], score: float) -> float | None:
    """Bytes at ``score`` on one photo's rate curve (log bytes linear in score); None when
    the curve does not reach it."""
    pts = sorted((r.score, math.log(r.bytes)) for r in rows)
    for (s0, b0), (s1, b1) in zip(pts, pts[1:], strict=False):
        if s0 <= score <= s1:
            if s1 == s0:
                return math.exp(b0)
            return math.exp(b0 + (b1 - b0) * (score - s0) / (s1 - s0))
    return None


def _by(rows: list[Row]) -> dict[tuple[str, str, int], list[Row]]:
    out: dict[tuple[str, str, int], list[Row]] = {}
    for r in rows:
        out.setdefault((r.label, r.photo, r.box), []).append(r)
    return out


def ratios(
    by: dict[tuple[str, str, int], list[Row]],
    ours: str,
    theirs: str,
    score: float,
    photos: Sequence[str],
    boxes: Sequence[int],
) -> dict[str, Any]:
    """``ours`` bytes over ``theirs`` at ``score``, per (photo, box): the median of the
    per-image ratios and the ratio of the totals."""
    each, a_total, b_total, skipped = [], 0.0, 0.0, 0
    for photo in photos:
        for box in boxes:
            a = at_score(by.get((ours, photo, box), []), score)
            b = at_score(by.get((theirs, photo, box), []), score)
            if a is None or b is None:
                skipped += 1
                continue
            each.append(a / b)
            a_total += a
            b_total += b
    return {
        "median": round(statistics.median(each), 3) if each else None,
        "total": round(a_total / b_total, 3) if b_total else None,
        "n": len(each),
        "skipped": skipped,
    }


def _at_old_points(
    by: dict[tuple[str, str, int], list[Row]],
    new: str,
    old: str,
    photos: Sequence[str],
    boxes: Sequence[int],
) -> list[tuple[float, int]]:
    """(``new``'s bytes at the score ``old``'s one point reached, that point's bytes) per photo
    and box where both are known: an old setting is compared where its own curve is."""
    each = []
    for photo in photos:
        for box in boxes:
            point = by.get((old, photo, box))
            b = at_score(by.get((new, photo, box), []), point[0].score) if point else None
            if point and b is not None:
                each.append((b, point[0].bytes))
    return each


def summarise(rows: list[Row], target: float, photos: Sequence[str]) -> dict[str, Any]:
    """What the rows of ``photos`` say (rows of other photos are left out)."""
    rows = [r for r in rows if r.photo in set(photos)]
    by = _by(rows)
    out: dict[str, Any] = {"target": target, "shipped": {}, "before": {}, "sharp": {}}
    for fmt in GRID:
        shipped = [r for r in rows if r.label == f"shipped {fmt}"]
        for box in BOXES:
            scores = sorted(r.score for r in shipped if r.box == box)
            if not scores:
                continue
            out["shipped"][f"{fmt} {box}"] = {
                "median": round(statistics.median(scores), 1),
                "p10": round(scores[max(0, math.ceil(len(scores) * 0.1) - 1)], 1),
                "min": round(scores[0], 1),
                "max": round(scores[-1], 1),
                "bytes": sum(r.bytes for r in shipped if r.box == box),
                "quality": sorted({r.quality for r in shipped if r.box == box}),
            }

    # The old settings can only be compared where their own curve is: one point each. At
    # the old point's score, the new curve is interpolated, the old bytes are the point's.
    for fmt in GRID:
        for box in BOXES:
            key = f"{fmt} {box}"
            each = _at_old_points(by, f"engine {fmt}", f"before {fmt}", photos, (box,))
            if each:
                out["before"][key] = {
                    "median": round(statistics.median(a / b for a, b in each), 3),
                    "total": round(sum(a for a, _ in each) / sum(b for _, b in each), 3),
                    "n": len(each),
                    "skipped": len(photos) - len(each),
                    "old_score": round(
                        statistics.median(by[(f"before {fmt}", p, box)][0].score for p in photos),
                        1,
                    ),
                }
    # AVIF against the JPEG before the calibration (q82 baseline, the issue's own measure):
    # at each photo's old JPEG score, the AVIF curve interpolated, the old bytes the point's.
    out["avif/before jpeg"] = {}
    for boxes in [(box,) for box in BOXES] + [BOXES]:
        each = _at_old_points(by, "engine avif", "before jpeg", photos, boxes)
        key = str(boxes[0]) if len(boxes) == 1 else "both"
        out["avif/before jpeg"][key] = {
            "median": round(statistics.median(a / b for a, b in each), 3) if each else None,
            "total": round(sum(a for a, _ in each) / sum(b for _, b in each), 3) if each else None,
            "n": len(each),
        }
    for other in ("jpeg", "webp"):
        out[f"avif/{other}"] = {
            str(box): ratios(by, "engine avif", f"engine {other}", target, photos, (box,))
            for box in BOXES
        }
        out[f"avif/{other}"]["both"] = ratios(
            by, "engine avif", f"engine {other}", target, photos, BOXES
        )
    out["webp/jpeg"] = ratios(by, "engine webp", "engine jpeg", target, photos, BOXES)
    # Whether another target would change AVIF's saving: the same ratio at other scores.
    out["avif/jpeg by score"] = {
        f"{score:g}": ratios(by, "engine avif", "engine jpeg", score, photos, BOXES)
        for score in sorted({*OTHER_SCORES, target})
    }
    if any(r.label == SVT_LABEL for r in rows):
        out["svt"] = {
            f"{against} {box}": ratios(by, SVT_LABEL, f"engine {against}", target, photos, boxes)
            for against in ("avif", "jpeg")
            for box, boxes in [*((str(b), (b,)) for b in BOXES), ("both", BOXES)]
        }
    for label, (fmt, _o, _q) in SHARP_ENCODERS.items():
        out["sharp"][label] = ratios(by, f"engine {fmt}", label, target, photos, BOXES)
    out["sharp"]["avif (ours) / sharp jpeg"] = ratios(
        by, "engine avif", "sharp jpeg", target, photos, BOXES
    )
    out["sharp"]["avif (ours) / sharp webp"] = ratios(
        by, "engine avif", "sharp webp", target, photos, BOXES
    )
    out["sharp"]["avif (ours) / sharp avif"] = ratios(
        by, "engine avif", "sharp avif", target, photos, BOXES
    )
    # sharp's defaults as they come: the score its default quality reaches.
    out["sharp defaults"] = {}
    for label, (_f, _o, q) in SHARP_ENCODERS.items():
        for box in BOXES:
            scores = [r.score for r in rows if r.label == label and r.box == box and r.quality == q]
            if scores:
                out["sharp defaults"][f"{label} q{q} {box}"] = round(statistics.median(scores), 1)

    return out


def render(summary: dict[str, Any], photos: Sequence[str], scorer: str, sharp: str) -> str:
    from processor.core.encoders import ENCODERS

    avif_effort = ENCODERS["avif"].default_effort
    t = summary["target"]
    lines = [
        "# Bytes at equal perceptual quality",
        "",
        f"`python -m benchmarks.bytes`: {len(photos)} real photos "
        f"({', '.join(photos)}), boxes {' and '.join(map(str, BOXES))} px, scored with "
        f"SSIMULACRA2 ({scorer}); sharp {sharp or '(left out)'}; libvips "
        f"{'.'.join(str(pyvips.version(i)) for i in range(3))}. Bytes at equal score are read "
        "off each photo's rate curve; a ratio under 1 means the engine needs fewer bytes.",
        "",
        f"## The renditions as shipped (target {t:g})",
        "",
        "| format, box | quality | median score | p10 | min | max | bytes (all photos) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += _shipped_rows(summary)
    lines += [
        "",
        "## Against the settings before the calibration, at the score those reached",
        "",
        "| format, box | score before (median) | bytes now / before (median) | (total) | photos |",
        "|---|---:|---:|---:|---:|",
    ]
    note = [
        "",
        "WebP runs the same encoder at the same effort as before, so at equal score its bytes "
        "are the same (1.0): what changed for it is the score it is sent at. JPEG's encoder "
        "changed (mozjpeg's settings, `jpeg_effort` 2), and AVIF's effort (libaom, "
        f"`avif_effort` {calibrate.BEFORE['avif'][1]} before, {avif_effort} now).",
    ]
    for key, r in summary["before"].items():
        lines.append(
            f"| {key} | {r.get('old_score', '')} | {r['median']} | {r['total']} | {r['n']} |"
        )
    lines += note
    lines += [
        "",
        f"## Between formats, at the target ({t:g})",
        "",
        "| ratio | 320 | 2048 | both sizes (median) | both sizes (total) |",
        "|---|---:|---:|---:|---:|",
        *_between_rows(summary),
        "",
        "AVIF / JPEG at other targets (both sizes; a photo-size counts where both curves reach "
        "the score):",
        "",
        "| target | total | median | photo-sizes |",
        "|---:|---:|---:|---:|",
        *(
            f"| {score} | {r['total']} | {r['median']} | {r['n']} |"
            for score, r in summary["avif/jpeg by score"].items()
        ),
    ]
    lines += [
        "",
        f"## Against sharp, at the target ({t:g})",
        "",
        "| engine / sharp | median | total | photo-sizes |",
        "|---|---:|---:|---:|",
    ]
    for label, r in summary["sharp"].items():
        name = label if "/" in label else f"{label.split()[1]} (ours) / {label}"
        if r["n"]:
            lines.append(f"| {name} | {r['median']} | {r['total']} | {r['n']} |")
    lines += _svt_section(summary)
    held = summary.get("holdout")
    if held:
        lines += [
            "",
            f"## Photos the calibration never saw (target {t:g})",
            "",
            f"{len(held['photos'])} camera photos from another source "
            "(benchmarks/camera.py, HOLDOUT: Ubuntu's wallpaper contest, 2572x1740 to "
            f"6028x3391): {', '.join(held['photos'])}. The same settings, the same measures.",
            "",
            "| format, box | quality | median score | p10 | min | max | bytes (all photos) |",
            "|---|---|---:|---:|---:|---:|---:|",
            *_shipped_rows(held),
            "",
            "| ratio | 320 | 2048 | both sizes (median) | both sizes (total) |",
            "|---|---:|---:|---:|---:|",
            *_between_rows(held),
            f"| JPEG now / the JPEG before (q82 baseline), at its score "
            f"| {held['before']['jpeg 320']['total']} | {held['before']['jpeg 2048']['total']} "
            "| | |",
            *(
                f"| AVIF (ours) / sharp's default {theirs.upper()} | | | "
                f"{held['sharp'][f'avif (ours) / sharp {theirs}']['median']} "
                f"| {held['sharp'][f'avif (ours) / sharp {theirs}']['total']} |"
                for theirs in ("jpeg", "webp")
                if held["sharp"].get(f"avif (ours) / sharp {theirs}", {}).get("n")
            ),
            *_svt_section(held, heading=False),
        ]
    cost = summary.get("ladder_cost")
    if cost:
        b, d, u = cost["before"], cost["default"], cost.get("unscored")
        lines += [
            "",
            f"## What the default ladder costs (whole engine, {cost['images']} photos, "
            f"{cost['memory_mb']} MB)",
            "",
            "| ladder | CPU ms/image (median) | wall ms (median) | billed ms per 1,000 images "
            "| USD per 1,000 (arm64) | peak RSS above the warm engine, MB (median, max) |",
            "|---|---:|---:|---:|---:|---:|",
            *(
                _cost_row(label, row)
                for label, row in (
                    ("before: JPEG q82 + WebP q80", b),
                    (f"default: AVIF + WebP + JPEG at target {t:g}, each rendition scored", d),
                    ("the same, scoring off", u),
                )
                if row
            ),
            "",
            f"CPU {cost['cpu_ratio']}x, billed time {cost['billed_ratio']}x the ladder before"
            + (f"; the scores' share: CPU {cost['scored_cpu_ratio']}x scoring off." if u else "."),
        ]
    lines += [
        "",
        "sharp's default qualities reach (median score): "
        + ", ".join(f"{k}: {v}" for k, v in summary["sharp defaults"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def _shipped_rows(summary: dict[str, Any]) -> list[str]:
    return [
        f"| {key} | {'/'.join(map(str, s['quality']))} | {s['median']} | {s['p10']} "
        f"| {s['min']} | {s['max']} | {s['bytes']:,} |"
        for key, s in summary["shipped"].items()
    ]


def _between_rows(summary: dict[str, Any]) -> list[str]:
    rows = []
    for other in ("jpeg", "webp"):
        r = summary[f"avif/{other}"]
        rows.append(
            f"| AVIF / {other.upper()} | {r['320']['total']} | {r['2048']['total']} "
            f"| {r['both']['median']} | {r['both']['total']} |"
        )
    r = summary["webp/jpeg"]
    rows.append(f"| WebP / JPEG | | | {r['median']} | {r['total']} |")
    r = summary["avif/before jpeg"]
    rows.append(
        f"| AVIF / the JPEG before (q82 baseline), at its score | {r['320']['total']} "
        f"| {r['2048']['total']} | {r['both']['median']} | {r['both']['total']} |"
    )
    return rows


def _svt_section(summary: dict[str, Any], heading: bool = True) -> list[str]:
    svt = summary.get("svt")
    if not svt:
        return []
    lines = []
    if heading:
        lines += [
            "",
            f"## Another AV1 encoder, at the target ({summary['target']:g})",
            "",
            "SVT-AV1 (through libavif, tune IQ for still images, preset "
            f"{SVT_OPTIONS['speed']}: about 1.5x libaom's CPU at the table's effort) on the same "
            "pixels, against the engine's libaom AVIF and its JPEG. Under 1: SVT-AV1 needs "
            "fewer bytes.",
        ]
    lines += ["", "| ratio | 320 | 2048 | both sizes (median) | both sizes (total) |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for against, name in (("avif", "libaom AVIF (ours)"), ("jpeg", "JPEG (ours)")):
        lines.append(
            f"| SVT-AV1 AVIF / {name} | {svt[f'{against} 320']['total']} "
            f"| {svt[f'{against} 2048']['total']} | {svt[f'{against} both']['median']} "
            f"| {svt[f'{against} both']['total']} |"
        )
    return lines


MEMORY_MB = 2048  # infra/template.yaml ProcessorMemory's default


def _cost_row(label: str, r: dict[str, Any]) -> str:
    peak = f"{r['peak_mb_median']}, {r['peak_mb_max']}" if "peak_mb_median" in r else "-"
    return (
        f"| {label} | {r['cpu_ms']} | {r['wall_ms']} | {r['billed_ms_per_1000']:,} "
        f"| {r['usd_per_1000_arm64']} | {peak} |"
    )


def ladders() -> dict[str, Any]:
    """The ladders the cost run compares: before the calibration (JPEG q82 + WebP q80 at
    both sizes, unscored), today's default (AVIF + WebP + JPEG at the target, every rendition
    scored) and the same with scoring off."""
    from processor.core.config import EngineConfig, Quality, Scoring

    new = EngineConfig()
    old_quality = Quality(jpeg=82, jpeg_effort=0, webp=80)
    old = EngineConfig(
        renditions=tuple(
            r.model_copy(update={"formats": ("jpeg", "webp"), "quality": old_quality})
            for r in new.renditions
        ),
        scoring=Scoring(enabled=False),  # before the scores too
    )
    unscored = new.model_copy(update={"scoring": Scoring(enabled=False)})
    return {"before": old, "default": new, "unscored": unscored}


def ladder_cost(photos: Sequence[Path], rounds: int = 1) -> dict[str, Any]:
    """The whole engine on each photo with each of ``ladders()``, taking turns on each photo:
    CPU and wall time in this process, billed ms per image at the default memory
    (benchmarks/cost.py), and the peak RSS above the warm engine of one photo processed in a
    fresh process (benchmarks/ladder_rss.py)."""
    from benchmarks.cost import Prices, estimate
    from benchmarks.ladder_rss import probe
    from processor.imaging.engine import Engine

    engines = {name: Engine(config) for name, config in ladders().items()}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in engines}
    out_bytes: dict[str, int] = dict.fromkeys(engines, 0)
    for _ in range(rounds):
        for path in photos:
            for name, engine in engines.items():
                c0, w0 = time.process_time(), time.perf_counter()
                result = engine.process(path, image_id="bench", versioned=False)
                times[name].append(
                    ((time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3)
                )
                out_bytes[name] += sum(len(o.data) for o in result.outputs)
    peaks: dict[str, list[float]] = {k: [] for k in engines}
    for path in photos:  # taking turns here too
        for name in engines:
            rss = probe(name, str(path))
            peaks[name].append((rss["peak_kb"] - rss["base_kb"]) / 1024)
    out: dict[str, Any] = {"memory_mb": MEMORY_MB, "images": len(photos) * rounds}
    for name, t in times.items():
        e = estimate(t, MEMORY_MB, 0, Prices())
        out[name] = {
            "cpu_ms": round(statistics.median(c for _, c in t)),
            "wall_ms": round(statistics.median(w for w, _ in t)),
            "billed_ms_per_1000": round(e.ms_per_image * 1000),
            "usd_per_1000_arm64": round(e.usd_per_1000["arm64"], 4),
            "peak_mb_median": round(statistics.median(peaks[name])),
            "peak_mb_max": round(max(peaks[name])),
        }
    out["cpu_ratio"] = round(out["default"]["cpu_ms"] / out["before"]["cpu_ms"], 2)
    out["billed_ratio"] = round(
        out["default"]["billed_ms_per_1000"] / out["before"]["billed_ms_per_1000"], 2
    )
    out["scored_cpu_ratio"] = round(out["default"]["cpu_ms"] / out["unscored"]["cpu_ms"], 2)
    return out


PLOT = Path(__file__).resolve().parents[1] / "docs" / "bytes.png"
PLOTTED = (
    "engine avif",
    "engine webp",
    "engine jpeg",
    SVT_LABEL,
    "sharp avif",
    "sharp webp",
    "sharp jpeg mozjpeg",
    "sharp jpeg",
)


def plot(rows: list[Row], target: float, path: Path = PLOT) -> None:
    """Rate against score per encoder at 2048 px: the median over photos of bits per pixel at
    each score most photos' curves reach; the settings before as points (medians)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = _by(rows)
    photos = sorted({r.photo for r in rows})
    big = [r for r in rows if r.box == 2048]
    pixels = {r.photo: r.width * r.height for r in big}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for label in PLOTTED:
        xs, ys = [], []
        for score in [60 + 0.5 * i for i in range(64)]:
            got = [(at_score(by.get((label, p, 2048), []), score), p) for p in photos]
            bpp = [8 * g / pixels[p] for g, p in got if g is not None]
            if len(bpp) * 2 > len(photos):  # most photos' curves reach this score
                xs.append(score)
                ys.append(statistics.median(bpp))
        if xs:
            ax.plot(xs, ys, "-" if label.startswith("engine") else "--", label=label)
    for fmt in GRID:
        old = [r for r in big if r.label == f"before {fmt}"]
        if old:
            x = statistics.median(r.score for r in old)
            y = statistics.median(8 * r.bytes / pixels[r.photo] for r in old)
            ax.plot([x], [y], "o", label=f"before: {fmt} q{old[0].quality}")
    ax.axvline(target, color="grey", linewidth=0.8)
    ax.set_xlabel("SSIMULACRA2 (every photo at this score; the old settings: their median)")
    ax.set_ylabel("bits per pixel (median over photos)")
    ax.set_title(f"Rate against score, 2048 px box, {len(photos)} photos")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    from processor.core import calibration
    from processor.core.config import DEFAULT_TARGET

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET)
    parser.add_argument(
        "--cost", type=int, default=4, help="photos the whole-engine CPU is measured on (0: none)"
    )
    parser.add_argument("--port", action="store_true", help="score with the engine's port")
    parser.add_argument("--no-sharp", action="store_true", help="leave sharp out")
    parser.add_argument(
        "--no-camera", action="store_true", help="leave out the camera photos (benchmarks.camera)"
    )
    parser.add_argument(
        "--sharp-only", action="store_true", help="score sharp's files only (fills the cache)"
    )
    parser.add_argument(
        "--no-holdout",
        action="store_true",
        help="leave out the photos the calibration never saw (benchmarks.camera HOLDOUT)",
    )
    parser.add_argument("--no-svt", action="store_true", help="leave out SVT-AV1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    photos = photo_set(args.photos, camera=not args.no_camera)
    held: list[Path] = []
    if not args.no_holdout:
        from benchmarks.camera import holdout_photos

        held = holdout_photos()
    measured = photos + held
    # Its own cache file (a calibration may be running), reading the calibration's too.
    m = Measurer(
        args.workers, cache_file="bytes-scores.json", also_read=["scores.json"], port=args.port
    )
    t0 = time.monotonic()
    try:
        for p in measured:
            for b in BOXES:
                m.ref(p, b)
        version = sharp_version() if not args.no_sharp else ""
        files: dict[tuple[str, str, int], Path] = {}
        if not args.no_sharp and not all(
            m.cached(p, b, label, q, version)
            for p in measured
            for b in BOXES
            for label, (fmt, _o, _q) in SHARP_ENCODERS.items()
            for q in SHARP_GRID[fmt]
        ):  # sharp encodes only what was never scored
            files, version = sharp_files(m, measured)
        jobs: list[tuple[str, str, Sequence[int], Encoder, str]] = [
            (label, fmt, SHARP_GRID[fmt], file_encoder(files, label, m), version)
            for label, (fmt, _o, _q) in SHARP_ENCODERS.items()
            if not args.no_sharp
        ]
        if args.sharp_only:
            m.run(measured, jobs)
            return
        if not args.no_svt:
            svt, tag = svt_encoder()
            jobs.append((SVT_LABEL, "avif", SVT_GRID, svt, tag))
        # the same encodes as the calibration's (cached)
        rows = m.run(measured, calibrate.jobs() + jobs)
        for fmt in GRID:  # the calibrated setting, per box
            for box in BOXES:
                q = calibration.quality_for(fmt, args.target, box)
                rows += m.run(
                    measured,
                    [(f"shipped {fmt}", fmt, (q,), engine_encoder(fmt), "shipped")],
                    boxes=(box,),
                )
    finally:
        m.close()
    names = [p.name for p in photos]
    summary = summarise(rows, args.target, names)
    if held:
        held_names = [p.name for p in held]
        summary["holdout"] = {**summarise(rows, args.target, held_names), "photos": held_names}
    if args.cost:
        summary["ladder_cost"] = ladder_cost(photos[: args.cost])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bytes.json").write_text(
        json.dumps({"summary": summary, "rows": [r.__dict__ for r in rows]}, indent=1)
    )
    (RESULTS / "bytes.md").write_text(render(summary, names, m.scorer, version))
    bytes_readme.update(summary)
    plot([r for r in rows if r.photo in set(names)], args.target)
    log.info("wrote benchmarks/results/bytes.md in %.0f s", time.monotonic() - t0)


if __name__ == "__main__":
    main()
