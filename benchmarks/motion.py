"""``python -m benchmarks.motion``: animated WebP renditions against the source GIF and sharp.

For each animated GIF (the real ones in tests/samples and the corpus, plus two made here from
a moving gradient, marked synthetic, at the sizes real GIFs come in), the engine makes the
default ladder's animated WebPs (``thumb`` inside 320, ``optimized`` inside 2048, WebP q80
effort 4) and sharp makes the same two files from the same GIF
(``sharp(file, {animated: true}).resize(box, box, {fit: "inside", withoutEnlargement: true})
.webp({quality: 80, effort: 4})``, benchmarks/sharp/animated.js; npm's prebuilt sharp, pinned
in benchmarks/sharp/package.json and installed there when missing). Bytes are the two files
together; CPU is user + system time, the median of ``--rounds``, of the engine's one
``process`` (one decode for both sizes) and of sharp's two calls. Then peak RSS above the
warm engine per frame count (fresh processes, benchmarks/decode_memory.py) against the cost
model's estimate. Writes benchmarks/results/motion.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.decode_memory import MB, Case, animate, measure

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "samples"
SHARP = Path(__file__).resolve().parent / "sharp"
RESULTS = Path(__file__).resolve().parent / "results" / "motion.md"
REAL = (
    SAMPLES / "pillow/iss634.gif",
    SAMPLES / "sharp/animated-loop-3.gif",
    SAMPLES / "sharp/rotating-squares.gif",
    SAMPLES / "wuffs/animated-red-blue.gif",
    SAMPLES / "libvips/cogs.gif",
    SAMPLES / "libvips/dispose-background.gif",
    SAMPLES / "image-rs/large-gif-anim-combine.gif",
    SAMPLES / "pillow/dispose_bgnd_transparency.gif",
)
SYNTHETIC = (Case("gif", 480, 270, frames=60), Case("gif", 800, 600, frames=40))
BOXES = (320, 2048)
FRAME_COUNTS = (25, 50, 100, 200, 400)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def engine_runs(files: list[Path], rounds: int) -> dict[str, dict[str, float]]:
    from processor.core.config import EngineConfig, RenditionSpec, Scoring
    from processor.imaging.engine import Engine

    config = EngineConfig(
        renditions=tuple(
            RenditionSpec(
                name=f"w{box}", folder=f"w{box}", width=box, height=box, formats=("webp",)
            )
            for box in BOXES
        ),
        scoring=Scoring(enabled=False),  # sharp does not score: the same work, no more
    )
    engine = Engine(config)
    engine.process(files[0], image_id="warm-up")
    out: dict[str, dict[str, float]] = {}
    for path in files:
        cpu = []
        for _ in range(rounds):
            before = _cpu_s()
            result = engine.process(path, image_id="m")
            cpu.append((_cpu_s() - before) * 1000)
        assert all(o.info.animated for o in result.outputs), path
        out[str(path)] = {
            "bytes": sum(o.info.bytes for o in result.outputs),
            "largest": max(o.info.bytes for o in result.outputs if o.info.name == f"w{BOXES[-1]}"),
            "cpu_ms": statistics.median(cpu),
            "frames": result.facts.frames,
            "size": f"{result.facts.width}x{result.facts.height}",
        }
    return out


def ensure_sharp() -> None:
    if not (SHARP / "node_modules" / "sharp").is_dir():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SHARP, check=True
        )


def run_sharp(script: str, job: dict[str, Any]) -> list[dict[str, Any]]:
    """One node process running ``script`` (benchmarks/sharp/) on ``job``: its JSON lines."""
    done = subprocess.run(
        ["node", str(SHARP / script)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
        cwd=SHARP,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def sharp_runs(files: list[Path], rounds: int) -> tuple[dict[str, dict[str, float]], str]:
    ensure_sharp()
    job = {
        "files": [str(f) for f in files],
        "boxes": BOXES,
        "quality": 80,
        "effort": 4,
        "rounds": rounds,
    }
    out: dict[str, dict[str, float]] = {}
    version = ""
    for row in run_sharp("animated.js", job):
        version = row["version"]
        total = out.setdefault(row["file"], {"bytes": 0, "cpu_ms": 0.0})
        total["bytes"] += row["bytes"]
        total["cpu_ms"] += row["cpu_ms"]
    return out, version


def table(
    files: list[Path], ours: dict[str, dict[str, float]], sharp: dict[str, dict[str, float]]
) -> list[str]:
    lines = [
        "| input | frames | size | GIF bytes | engine's 2048 WebP / GIF | engine WebP bytes (both) "
        "| sharp WebP bytes (both) | engine/sharp bytes | engine CPU ms | sharp CPU ms "
        "| engine/sharp CPU |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals = {
        "gif": 0,
        "largest": 0.0,
        "ours": 0.0,
        "sharp": 0.0,
        "ours_cpu": 0.0,
        "sharp_cpu": 0.0,
    }
    for path in files:
        key = str(path)
        o, s, gif = ours[key], sharp[key], path.stat().st_size
        totals["gif"] += gif
        totals["largest"] += o["largest"]
        totals["ours"] += o["bytes"]
        totals["sharp"] += s["bytes"]
        totals["ours_cpu"] += o["cpu_ms"]
        totals["sharp_cpu"] += s["cpu_ms"]
        name = f"{path.name} (synthetic)" if path.name.startswith("gif-") else path.name
        lines.append(
            f"| {name} | {o['frames']} | {o['size']} | {gif:,} | {o['largest'] / gif:.2f} | "
            f"{o['bytes']:,} | {s['bytes']:,} | {o['bytes'] / s['bytes']:.3f} | "
            f"{o['cpu_ms']:.0f} | {s['cpu_ms']:.0f} | {o['cpu_ms'] / s['cpu_ms']:.2f} |"
        )
    lines.append(
        f"| **all** | | | {totals['gif']:,} | {totals['largest'] / totals['gif']:.2f} | "
        f"{totals['ours']:,.0f} | {totals['sharp']:,.0f} | "
        f"{totals['ours'] / totals['sharp']:.3f} | "
        f"{totals['ours_cpu']:.0f} | {totals['sharp_cpu']:.0f} | "
        f"{totals['ours_cpu'] / totals['sharp_cpu']:.2f} |"
    )
    return lines


def memory_rows(directory: Path) -> list[str]:
    lines = [
        "| frames (480x270 GIF) | peak MB above the warm engine | cost model's estimate MB "
        "| estimate/peak |",
        "|---:|---:|---:|---:|",
    ]
    for frames in FRAME_COUNTS:
        m = measure(Case("gif", 480, 270, frames=frames), directory)
        lines.append(
            f"| {frames} | {m.peak_bytes / MB:,.0f} | {m.estimate_bytes / MB:,.0f} | "
            f"{m.estimate_bytes / max(1, m.peak_bytes):.2f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.motion", description=__doc__.splitlines()[0]
    )
    p.add_argument("--rounds", type=int, default=3, help="runs per measurement (median)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--no-memory", action="store_true", help="skip the peak RSS runs")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="imgpipe-motion-") as tmp:
        made = [animate(case, Path(tmp) / f"{case.name}.gif") for case in SYNTHETIC]
        files = [*REAL, *made]
        files = [f.resolve() for f in files if f.exists()]
        ours = engine_runs(files, args.rounds)
        sharp, version = sharp_runs(files, args.rounds)
        lines = [
            "# Animated WebP: engine against the source GIF and sharp",
            "",
            f"`python -m benchmarks.motion`; sharp {version} (npm's prebuilt, libvips and libwebp "
            "inside), both at WebP q80 effort 4, boxes 320 and 2048 (inside, never enlarged).",
            "",
            *table(files, ours, sharp),
        ]
        if not args.no_memory:
            lines += ["", "## Peak memory per frame count", "", *memory_rows(Path(tmp))]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
