"""``python -m benchmarks.score_sampled``: the engine's sampled score against the whole one.

Above ``Scoring.sample_above`` pixels the score step measures SSIMULACRA2's two finest scales
on ``Scoring.sample_share`` of their pixels (processor/imaging/score.py ``choose``). This
measures, on real photos (benchmarks/calibrate.py ``PHOTOS``) made as the engine makes a
rendition (``reference``: resized into the 320 and 2048 px boxes, 8-bit sRGB) and encoded by
the engine's own save functions (``engine_encoder``) in JPEG, WebP and AVIF at an ordinary
and a low quality:

- the sampled score (the step's default settings) against the whole port's score and against
  the reference binary (libjxl's ``tools/ssimulacra2``: the SSIMULACRA2 environment variable,
  PATH or benchmarks/.cache, built by benchmarks/tools/ssimulacra2.sh): mean |difference|,
  95th percentile, largest;
- the CPU of one score, sampled and whole, as a ratio, in the same run;
- the CPU of processing each photo with the default config, scoring on (the sampling's
  defaults), against the same config with scoring off, as a ratio.

It rewrites the "Sampled" section of benchmarks/results/score.md (the section above it is
``python -m benchmarks.score_check``'s).

    python -m benchmarks.score_sampled              # 5 photos, about 10 minutes on 2 cores
    python -m benchmarks.score_sampled --photos 2   # fewer
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import pyvips

from benchmarks.calibrate import PHOTOS, engine_encoder, reference, ssimulacra2
from benchmarks.score_check import RESULTS, SAMPLED, reference_score
from processor.core.config import EngineConfig, Scoring
from processor.imaging.engine import Engine
from processor.imaging.score import ssimulacra2 as port

BOXES = (320, 2048)
QUALITIES = {"jpeg": (80, 40), "webp": (80, 40), "avif": (60, 30)}  # ordinary, low
GATE_MEAN, GATE_MAX = 0.5, 2.0  # points: what the sampled score may differ from the whole


class Row(NamedTuple):
    rendition: str
    box: int
    size: str
    share: float
    reference: float
    whole: float
    sampled: float
    whole_cpu: float
    sampled_cpu: float


def cpu(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def summary(diffs: Sequence[float]) -> str:
    ordered = sorted(abs(d) for d in diffs)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return f"{statistics.mean(ordered):.3f} | {p95:.3f} | {ordered[-1]:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=5, help="the first N of PHOTOS")
    args = parser.parse_args(argv)
    tool = Path(str(ssimulacra2()))
    scoring = Scoring()
    photos = PHOTOS[: args.photos]
    rows = []
    for path in photos:
        for box in BOXES:
            ref = reference(path, box)
            pixels = ref.width * ref.height
            share = scoring.sample_share if pixels > scoring.sample_above else 1.0
            for fmt, qualities in QUALITIES.items():
                for quality in qualities:
                    data = engine_encoder(fmt)(ref, quality)
                    dist = pyvips.Image.new_from_buffer(data, "").copy_memory()
                    whole, whole_cpu = cpu(lambda r=ref, d=dist: port(r, d))
                    fast, fast_cpu = cpu(lambda r=ref, d=dist, s=share: port(r, d, s))
                    theirs = reference_score(tool, ref, dist)
                    size = f"{ref.width}x{ref.height}"
                    rendition = f"{path.name}@{box} {fmt} q{quality}"
                    rows.append(
                        Row(rendition, box, size, share, theirs, whole, fast, whole_cpu, fast_cpu)
                    )
                    print(
                        f"{path.name:40s} {ref.width}x{ref.height} {fmt} q{quality} share "
                        f"{share:.4f}: reference {theirs:.2f} whole {whole:.2f} sampled "
                        f"{fast:.2f} cpu {fast_cpu:.2f}/{whole_cpu:.2f} s",
                        flush=True,
                    )
    engine = []
    for path in photos:
        off = Engine(EngineConfig(scoring=Scoring(enabled=False)))
        on = Engine(EngineConfig(scoring=Scoring(enabled=True)))
        _, off_cpu = cpu(lambda p=path, e=off: e.process(p, image_id="off"))
        _, on_cpu = cpu(lambda p=path, e=on: e.process(p, image_id="on"))
        engine.append((path.name, off_cpu, on_cpu))
        print(f"{path.name}: engine {on_cpu:.2f} s scored, {off_cpu:.2f} s not", flush=True)
    write(rows, engine, scoring)


def write(rows: list[Row], engine: list[tuple[str, float, float]], scoring: Scoring) -> None:
    sampled = [r for r in rows if r.share < 1.0]
    lines = [
        f"{SAMPLED}: the score step's default against the whole port and the reference",
        "",
        "Made by `python -m benchmarks.score_sampled`: real photos (benchmarks/calibrate.py "
        "PHOTOS) resized into the default boxes and encoded by the engine's save functions at "
        f"an ordinary and a low quality ({', '.join(f'{f} {q}' for f, q in QUALITIES.items())}). "
        f"Renditions above {scoring.sample_above:,} pixels are scored with the full and "
        f"half-size scales sampled on {scoring.sample_share:.4g} of their pixels, the others "
        "whole (the step's defaults, `Scoring` in processor/core/config.py).",
        "",
        "| compared | pairs | mean abs diff | p95 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    if sampled:
        lines += [
            f"| sampled - whole port, sampled renditions | {len(sampled)} | "
            f"{summary([r.sampled - r.whole for r in sampled])} |",
            f"| sampled - reference binary, sampled renditions | {len(sampled)} | "
            f"{summary([r.sampled - r.reference for r in sampled])} |",
            f"| whole port - reference binary, same renditions | {len(sampled)} | "
            f"{summary([r.whole - r.reference for r in sampled])} |",
        ]
    lines += [
        f"| step - whole port, every rendition | {len(rows)} | "
        f"{summary([r.sampled - r.whole for r in rows])} |",
        f"| step - reference binary, every rendition | {len(rows)} | "
        f"{summary([r.sampled - r.reference for r in rows])} |",
        "",
    ]
    if sampled:
        diffs = [abs(r.sampled - r.whole) for r in sampled]
        held = statistics.mean(diffs) <= GATE_MEAN and max(diffs) <= GATE_MAX
        lines += [
            f"Gate (sampled against whole: mean <= {GATE_MEAN}, max <= {GATE_MAX} points): "
            f"{'held' if held else 'NOT held'}.",
            "",
        ]
    lines += [
        "CPU of one score (every thread, one run each, this shared machine), sampled over whole:",
        "",
        "| box | renditions | sampled | median CPU ratio | median whole CPU s |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for box in BOXES:
        for is_sampled in (True, False):
            group = [r for r in rows if r.box == box and (r.share < 1.0) == is_sampled]
            if group:
                lines.append(
                    f"| {box} px | {len(group)} | {'yes' if is_sampled else 'no (whole)'} | "
                    f"{statistics.median(r.sampled_cpu / r.whole_cpu for r in group):.2f} | "
                    f"{statistics.median(r.whole_cpu for r in group):.2f} |"
                )
    lines += [
        "",
        "CPU of processing one photo (the default ladder: AVIF, WebP and JPEG at 320 and 2048 "
        "px), scoring on (its default sampling) over scoring off:",
        "",
        "| photo | ratio |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {on / off:.2f} |" for name, off, on in engine]
    total = sum(on for _, _, on in engine) / sum(off for _, off, _ in engine)
    lines += [f"| all {len(engine)} | {total:.2f} |", "", "Every pair:", ""]
    lines += [
        "| rendition | size | share | reference | whole | sampled | sampled - whole | CPU ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.rendition} | {r.size} | {r.share:.4g} | {r.reference:.2f} | {r.whole:.2f} "
        f"| {r.sampled:.2f} | {r.sampled - r.whole:+.3f} | {r.sampled_cpu / r.whole_cpu:.2f} |"
        for r in rows
    ]
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    head = text.split(SAMPLED, 1)[0].rstrip("\n")
    RESULTS.write_text((head + "\n\n" if head else "") + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
