"""``python -m benchmarks.run``: the whole benchmark, written to ``benchmarks/results/``.

Order of work: describe inputs (making large photos once), start warm workers, latency
rounds, batch rounds, peak RSS per input in fresh processes, handler import times,
end to end (when `imgpipe local` exists), then cost, the target check and the report.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import coldstart, corpus, e2e, encoders, report, suites, summary
from benchmarks.cost import Prices
from benchmarks.impls import IMPLS
from benchmarks.pool import child_env
from benchmarks.rendered import WEBP_EFFORT_ENV

log = logging.getLogger("benchmarks")

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark the imgpipe engine against Pillow and a bare pyvips floor.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--corpus",
        type=Path,
        default=corpus.DEFAULT_CORPUS.resolve(),
        help="folder of input images",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results are written")
    p.add_argument(
        "--webp-effort",
        type=int,
        choices=range(7),
        default=4,
        help="WebP encoder effort for every implementation alike (speed against bytes)",
    )
    p.add_argument("--impls", default=",".join(IMPLS), help="implementations to compare")
    p.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds")
    p.add_argument("--batch-rounds", type=int, default=3, help="rounds of the --jobs batch")
    p.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="processes per implementation in the batch run (1: no batch run)",
    )
    p.add_argument(
        "--large-mp",
        default="12,25,100",
        help="generated photo sizes (MP) in the latency and batch runs",
    )
    p.add_argument(
        "--memory-mp", default="25,100,250", help="generated photo sizes (MP) in the peak-RSS run"
    )
    p.add_argument(
        "--heic-mp",
        default="12,48",
        help="generated HEVC HEIC photo sizes (MP), in every run (empty: none)",
    )
    p.add_argument("--no-large", action="store_true", help="no generated large photos")
    p.add_argument(
        "--no-photos", action="store_true", help="no generated camera and wallpaper photos"
    )
    p.add_argument(
        "--cache", type=Path, default=corpus.CACHE_DIR, help="where generated photos are kept"
    )
    p.add_argument(
        "--memory-inputs",
        choices=("all", "large", "none"),
        default="all",
        help="which inputs get a fresh process for peak RSS",
    )
    p.add_argument("--import-runs", type=int, default=7, help="fresh interpreters per handler")
    p.add_argument("--skip-imports", action="store_true")
    p.add_argument("--skip-e2e", action="store_true")
    p.add_argument(
        "--skip-encoders",
        action="store_true",
        help="no WebP encoder comparison (libvips against Pillow), latency bound or trade-off",
    )
    p.add_argument(
        "--tradeoff-inputs",
        type=int,
        default=6,
        help="photos in the WebP effort/quality trade-off (0: none)",
    )
    p.add_argument(
        "--e2e-count", type=int, default=100, help="at most this many uploads end to end"
    )
    p.add_argument(
        "--overlap-count",
        type=int,
        default=12,
        help="uploads per run of the images-in-flight measure (one at a time against two)",
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=2048,
        help="the processor Lambda's configured memory size, for cost",
    )
    p.add_argument("--price-arm64", type=float, default=Prices.arm64_gb_s, help="USD per GB-s")
    p.add_argument("--price-x86", type=float, default=Prices.x86_64_gb_s, help="USD per GB-s")
    p.add_argument(
        "--price-requests",
        type=float,
        default=Prices.per_million_requests,
        help="USD per million requests",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds, 1 batch round, 3 import runs, peak RSS on large inputs only",
    )
    p.add_argument("--no-charts", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.batch_rounds, args.import_runs = 2, 1, 3
        args.memory_inputs = "large"
        args.tradeoff_inputs = min(args.tradeoff_inputs, 2)
    return args


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def machine_info() -> dict[str, Any]:
    import PIL
    import pyvips

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        memory_gb = 0.0
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count() or 1,
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "pyvips": pyvips.__version__,
        "pillow": PIL.__version__,
        "malloc_arena_max": "2",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    # libvips' header warnings (odd ICC profiles and the like) are not the harness's news.
    logging.getLogger("pyvips").setLevel(logging.ERROR)
    started = time.perf_counter()
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = set(impls) - set(IMPLS)
    if unknown:
        raise SystemExit(f"unknown implementations: {', '.join(sorted(unknown))}")
    large_mp = [] if args.no_large else _sizes(args.large_mp)
    heic_mp = [] if args.no_large else _sizes(args.heic_mp)
    memory_mp = [] if args.no_large else _sizes(args.memory_mp)

    log.info("describing inputs (large photos are made once, into %s)", args.cache)
    inputs = corpus.corpus_inputs(args.corpus) + corpus.large_inputs(
        large_mp, args.corpus, args.cache
    )
    if not args.no_photos:
        inputs += corpus.photo_inputs(args.corpus, args.cache)
    inputs += corpus.heic_inputs(heic_mp, args.corpus, args.cache)
    extra = [
        i
        for i in corpus.large_inputs(memory_mp, args.corpus, args.cache)
        if i.name not in {j.name for j in inputs}
    ]
    memory_inputs = {
        "all": inputs + extra,
        "large": [i for i in inputs + extra if i.kind in ("large", "heic")],
        "none": [],
    }[args.memory_inputs]

    prices = Prices(args.price_arm64, args.price_x86, args.price_requests)
    results: dict[str, Any] = {
        "machine": machine_info(),
        "params": {
            "command": " ".join(
                ["python -m benchmarks.run", shlex.join(sys.argv[1:] if argv is None else argv)]
            ).strip(),
            "corpus": str(args.corpus),
            "rounds": args.rounds,
            "webp_effort": args.webp_effort,
            "batch_rounds": args.batch_rounds,
            "jobs": args.jobs,
            "large_mp": large_mp,
            "memory_mp": memory_mp,
            "heic_mp": heic_mp,
            "memory_mb": args.memory_mb,
            "price_arm64_gb_s": prices.arm64_gb_s,
            "price_x86_64_gb_s": prices.x86_64_gb_s,
            "price_per_million_requests": prices.per_million_requests,
        },
        "inputs": [i.to_json() for i in inputs + extra],
    }

    env = child_env({WEBP_EFFORT_ENV: str(args.webp_effort)})
    with tempfile.TemporaryDirectory(prefix="imgpipe-bench-") as tmp:
        logs = Path(tmp)
        workers, skipped = suites.start_workers(impls, env, logs, count=max(1, args.jobs))
        results["skipped"] = skipped
        try:
            samples, results["noise"] = suites.latency(workers, inputs, args.rounds)
            if args.jobs > 1 and args.batch_rounds > 0:
                results["batch"] = suites.batch(workers, inputs, args.batch_rounds)
        finally:
            suites.close_all(workers)
        if memory_inputs:
            results["memory"] = suites.memory(list(workers), memory_inputs, env, logs)
        if not args.skip_encoders:
            log.info("WebP encoder alone, libvips against Pillow (effort %d)", args.webp_effort)
            results["webp"] = encoders.compare(inputs, args.webp_effort, reps=min(3, args.rounds))
            chosen = encoders.tradeoff_inputs(inputs, args.tradeoff_inputs)
            if chosen:
                log.info("WebP effort/quality trade-off on %d photos", len(chosen))
                efforts = sorted({*encoders.TRADEOFF_EFFORTS, args.webp_effort})
                results["tradeoff"] = encoders.tradeoff(chosen, efforts)
                results["tradeoff"]["equal_quality"] = encoders.at_equal_quality(
                    results["tradeoff"]["rows"], args.webp_effort, encoders.WEBP_QUALITY
                )
        if not args.skip_imports:
            log.info("import times, %d fresh interpreters each", args.import_runs)
            results["imports"] = [
                coldstart.import_time(m, env, args.import_runs) for m in coldstart.HANDLERS
            ]
        if args.skip_e2e:
            results["e2e"] = {"skipped": "--skip-e2e"}
        else:
            results["e2e"] = e2e.run(inputs, args.e2e_count, logs, env)
            log.info("end to end: images in flight, one at a time against two")
            results["e2e"]["overlap"] = e2e.overlap(inputs, args.overlap_count, logs, env)

    results["medians"] = {impl: summary.per_input(s) for impl, s in samples.items()}
    results["kinds"] = summary.by_kind(inputs, results["medians"])
    results["batch_summary"] = summary.batch_summary(results.get("batch", {}))
    results["bounds"] = summary.bounds(inputs, results["medians"], results.get("webp", {}))
    results["photos"] = summary.photos(inputs, results["medians"])
    if "memory" in results:
        results["memory_by_kind"] = summary.memory_by_kind(memory_inputs, results["memory"])
        results["memory_above_base_by_kind"] = summary.memory_by_kind(
            memory_inputs, results["memory"], above_base=True
        )
    results["cost"] = summary.costs(
        inputs,
        results["medians"],
        results.get("memory", {}),
        args.memory_mb,
        prices,
        results["machine"]["cores"],
    )
    results["targets"] = [t.to_json() for t in summary.targets(results)]
    results["elapsed_s"] = time.perf_counter() - started

    written = report.write(results, args.out, charts=not args.no_charts)
    for t in results["targets"]:
        value = "n/a" if t["measured"] is None else f"{t['measured']:.3g}"
        print(f"{t['status']:4}  {t['name']}: {value} (limit {t['limit']:g}, {t['margin']})")
    print(f"wrote {', '.join(str(p) for p in written)} in {results['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
