"""``python -m benchmarks.auto_quality``: the offsets of ``auto`` quality, and what it gains.

An ``auto`` rendition (core/config.py) searches each image's quality on a reduced copy
(processor/imaging/tune.py); a reduced copy scores differently from the rendition at the same
setting. This command measures, on a few real photos at the 2048 px rendition (never upscaled),
per lossy format: the rendition's score and its reduced copy's at the calibrated setting for
the default target; the median difference is the format's offset, written to
processor/core/auto_offsets.py. Then, with those offsets, it runs the search on each photo and
compares the rendition's score, bytes and CPU with the calibrated fixed setting's, written to
benchmarks/results/auto_quality.md. Scores are the engine's port (processor/imaging/score.py).
The offsets are measured on the same photos the comparison runs on: the comparison says how
well the search lands, not how well the offsets carry to other photos.

    python -m benchmarks.auto_quality             # 5 photos, writes the table and the results
    python -m benchmarks.auto_quality --photos 3 --dry-run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyvips

from benchmarks.calibrate import PHOTOS, reference
from processor.core import auto_offsets, calibration
from processor.core.config import DEFAULT_CONFIG, DEFAULT_TARGET
from processor.core.encoders import ENCODERS
from processor.imaging.encode import SAVERS
from processor.imaging.pixels import hold
from processor.imaging.score import ssimulacra2
from processor.imaging.tune import reduced, tune
from processor.imaging.vips import init_vips
from processor.rules.plan import Encode

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "processor" / "core" / "auto_offsets.py"
RESULTS = REPO / "benchmarks" / "results" / "auto_quality.md"
BOX = 2048
FORMATS = ("jpeg", "webp", "avif")


@dataclass(frozen=True)
class Run:
    photo: str
    format: str
    quality: int  # the calibrated setting
    score: float  # the rendition's at ``quality``
    reduced_score: float  # its reduced copy's
    bytes: int
    cpu: float  # seconds: the encode at ``quality``


@dataclass(frozen=True)
class Auto:
    quality: int
    trials: int
    score: float
    bytes: int
    cpu: float  # seconds: the search and the encode


def plain(fmt: str, quality: int) -> Encode:
    effort = ENCODERS[fmt].default_effort
    return Encode(format=fmt, quality=quality, effort=effort)  # type: ignore[arg-type]


def encode_score(image: pyvips.Image, enc: Encode) -> tuple[bytes, float, float]:
    held = hold(image)
    started = time.process_time()
    data = SAVERS[enc.format].still(held.image.copy(), held, enc)
    cpu = time.process_time() - started
    return data, ssimulacra2(held.image, pyvips.Image.new_from_buffer(data, "")), cpu


def fixed(photo: Path, image: pyvips.Image, fmt: str) -> Run:
    q = calibration.quality_for(fmt, DEFAULT_TARGET, max(image.width, image.height))
    data, full, cpu = encode_score(image, plain(fmt, q))
    _, small, _ = encode_score(reduced(image).image, plain(fmt, q))
    return Run(photo.name, fmt, q, round(full, 2), round(small, 2), len(data), cpu)


def auto(image: pyvips.Image, run: Run) -> Auto:
    from processor.imaging.budget import UNLIMITED

    started = time.process_time()
    found = tune(
        image, plain(run.format, run.quality), DEFAULT_TARGET, SAVERS[run.format].still, UNLIMITED
    )
    search_cpu = time.process_time() - started
    data, full, cpu = encode_score(image, plain(run.format, found.quality))
    return Auto(found.quality, found.trials, round(full, 2), len(data), search_cpu + cpu)


def render_table(offsets: dict[str, float], photos: int) -> str:
    lines = [
        '"""Score offsets of ``auto`` renditions\' reduced copies. Written by',
        "`python -m benchmarks.auto_quality`; do not edit by hand.",
        "",
        "format -> median score of the rendition less its reduced copy's, at the same setting.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        f"PHOTOS = {photos}",
        "OFFSETS: dict[str, float] = {",
        *(f'    "{fmt}": {value},' for fmt, value in sorted(offsets.items())),
        "}",
        "",
    ]
    return "\n".join(lines)


def render_results(runs: list[Run], autos: list[Auto], offsets: dict[str, float]) -> str:
    target = DEFAULT_TARGET
    lines = [
        "# Auto quality against the calibrated setting",
        "",
        f"`python -m benchmarks.auto_quality`: {len({r.photo for r in runs})} photos at the "
        f"{BOX} px rendition, target {target:g}, scores by processor/imaging/score.py. "
        "Offsets measured on the same photos.",
        "",
        "| format | offset | median abs(score - target), fixed | same, auto | bytes auto/fixed "
        "| CPU s fixed | CPU s auto | trials (max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fmt in FORMATS:
        pairs = [(r, a) for r, a in zip(runs, autos, strict=True) if r.format == fmt]
        if not pairs:
            continue
        lines.append(
            f"| {fmt} | {offsets[fmt]:+.2f} "
            f"| {statistics.median(abs(r.score - target) for r, _ in pairs):.2f} "
            f"| {statistics.median(abs(a.score - target) for _, a in pairs):.2f} "
            f"| {sum(a.bytes for _, a in pairs) / sum(r.bytes for r, _ in pairs):.3f} "
            f"| {statistics.median(r.cpu for r, _ in pairs):.2f} "
            f"| {statistics.median(a.cpu for _, a in pairs):.2f} "
            f"| {max(a.trials for _, a in pairs)} |"
        )
    lines += [
        "",
        "| photo | format | fixed q | fixed score | auto q | auto score | trials |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.photo} | {r.format} | {r.quality} | {r.score} | {a.quality} | {a.score} "
        f"| {a.trials} |"
        for r, a in zip(runs, autos, strict=True)
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--dry-run", action="store_true", help="print, write nothing")
    args = parser.parse_args(argv)
    init_vips(0)
    assert DEFAULT_CONFIG.renditions[-1].width == BOX
    runs: list[Run] = []
    images: dict[str, pyvips.Image] = {}
    for photo in PHOTOS[: args.photos]:
        image = images[photo.name] = reference(photo, BOX)
        for fmt in FORMATS:
            runs.append(fixed(photo, image, fmt))
            print(runs[-1], file=sys.stderr)
    offsets = {
        fmt: round(statistics.median(r.score - r.reduced_score for r in runs if r.format == fmt), 2)
        for fmt in FORMATS
    }
    auto_offsets.OFFSETS = offsets  # what the search below aims by
    autos = []
    for run in runs:
        autos.append(auto(images[run.photo], run))
        print(autos[-1], file=sys.stderr)
    results = render_results(runs, autos, offsets)
    print(results)
    if not args.dry_run:
        TABLE.write_text(render_table(offsets, args.photos), encoding="utf-8")
        RESULTS.write_text(results, encoding="utf-8")


if __name__ == "__main__":
    main()
