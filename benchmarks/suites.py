"""The measurements: latency and CPU, batch throughput, peak RSS. Each returns plain data.

Every implementation runs in its own worker process with the same environment; the
implementations take turns image by image, in an order that rotates each round, so that
drift in the machine's speed lands on all of them alike.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.corpus import Input
from benchmarks.noise import Meter, loadavg
from benchmarks.pool import Worker, measure_once, run_batch
from processor.core.errors import WorkerError

log = logging.getLogger(__name__)

Samples = dict[str, dict[str, dict[str, Any]]]  # impl -> input name -> samples


def start_workers(
    impls: list[str], env: Mapping[str, str], logs: Path, count: int = 1
) -> tuple[dict[str, list[Worker]], dict[str, str]]:
    """``count`` warm workers per implementation; an implementation that cannot start is
    skipped, with the reason (the engine may not import yet)."""
    workers: dict[str, list[Worker]] = {}
    skipped: dict[str, str] = {}
    for impl in impls:
        try:
            workers[impl] = [Worker(impl, env, logs / f"{impl}-{i}.log") for i in range(count)]
        except WorkerError as e:
            skipped[impl] = str(e).strip().splitlines()[-1]
            log.warning("skipping %s: %s", impl, skipped[impl])
    return workers, skipped


def close_all(workers: Mapping[str, list[Worker]]) -> None:
    for group in workers.values():
        for w in group:
            w.close()


def _warm_up(workers: list[Worker], inputs: list[Input]) -> None:
    """One image of each small format first: a warm Lambda has run its first image already."""
    seen: set[str] = set()
    for inp in inputs:
        if inp.kind != "large" and inp.format not in seen:
            seen.add(inp.format)
            for w in workers:
                w.run(inp.path)


def _rotated(items: list[str], by: int) -> list[str]:
    k = by % len(items)
    return items[k:] + items[:k]


def latency(
    workers: Mapping[str, list[Worker]], inputs: list[Input], rounds: int, seed: int = 7
) -> tuple[Samples, dict[str, Any]]:
    """One image at a time in one warm process: wall and CPU milliseconds per image, and
    how much CPU other processes took meanwhile."""
    impls = list(workers)
    for impl in impls:
        _warm_up(workers[impl][:1], inputs)
    samples: Samples = {
        impl: {i.name: {"wall_ms": [], "cpu_ms": [], "stages": [], "error": None} for i in inputs}
        for impl in impls
    }
    rng = random.Random(seed)
    meter = Meter()
    load_start = loadavg()
    for r in range(rounds):
        order = list(inputs)
        rng.shuffle(order)
        log.info("latency round %d/%d", r + 1, rounds)
        for inp in order:
            for impl in _rotated(impls, r):
                meter.start()
                answer = workers[impl][0].run(inp.path)
                s = samples[impl][inp.name]
                if answer["ok"]:
                    meter.stop(answer["cpu_ms"] / 1e3, answer["wall_ms"] / 1e3)
                else:
                    s["error"] = answer["error"]
                    continue
                s["wall_ms"].append(answer["wall_ms"])
                s["cpu_ms"].append(answer["cpu_ms"])
                s["stages"].append(answer["stages"])
                s["renditions"] = answer["renditions"]
    noise = {
        "foreign_cores": meter.foreign_cores,
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
    }
    return samples, noise


def batch(
    workers: Mapping[str, list[Worker]], inputs: list[Input], rounds: int
) -> dict[str, dict[str, Any]]:
    """Both cores busy: the whole set through ``len(workers[impl])`` processes per
    implementation, largest image first so that no process is left alone at the end."""
    impls = list(workers)
    for impl in impls:
        _warm_up(workers[impl][1:], inputs)
    order = [i.path for i in sorted(inputs, key=lambda i: -i.width * i.height)]
    out: dict[str, dict[str, Any]] = {
        impl: {"jobs": len(workers[impl]), "wall_s": [], "images": 0, "errors": 0} for impl in impls
    }
    meter = Meter()
    for r in range(rounds):
        log.info("batch round %d/%d", r + 1, rounds)
        for impl in _rotated(impls, r):
            meter.start()
            wall, answers = run_batch(workers[impl], order)
            meter.stop(sum(a["cpu_ms"] for a in answers if a["ok"]) / 1e3, wall)
            out[impl]["wall_s"].append(wall)
            out[impl]["images"] = sum(1 for a in answers if a["ok"])
            out[impl]["errors"] = sum(1 for a in answers if not a["ok"])
    for impl in impls:
        out[impl]["foreign_cores"] = meter.foreign_cores
    return out


def memory(
    impls: list[str], inputs: list[Input], env: Mapping[str, str], logs: Path
) -> dict[str, dict[str, dict[str, Any]]]:
    """Peak RSS of a fresh process per (implementation, input): imports, set-up and one image."""
    out: dict[str, dict[str, dict[str, Any]]] = {impl: {} for impl in impls}
    for n, inp in enumerate(inputs):
        if inp.kind == "large":
            log.info("peak RSS: %s (%.0f MP)", inp.name, inp.megapixels)
        for impl in _rotated(impls, n):
            answer = measure_once(impl, inp.path, env, logs / f"{impl}-once.log")
            out[impl][inp.name] = {
                "ok": answer.get("ok", False),
                "error": answer.get("error"),
                "peak_rss_mb": answer["peak_rss_kb"] / 1024,
                "base_rss_mb": answer.get("base_rss_kb", 0) / 1024,
                "self_peak_rss_mb": answer.get("self_peak_rss_kb", 0) / 1024,
                "wall_ms": answer.get("wall_ms"),
            }
    return out
