"""One implementation in its own process: ``python -m benchmarks.worker IMPL [--once PATH]``.

Served mode (default): prints one ready line, then answers each JSON request line on stdin
(``{"path": ...}``) with one JSON line: wall and CPU milliseconds, renditions, stages.
``--once PATH``: processes one file and exits, so the parent can read this process's peak RSS.

Stdout carries only the protocol: anything the implementation prints goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from benchmarks import impls


def _cpu_s() -> float:
    """User + system CPU seconds of this whole process (every libvips thread included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def hwm_kb() -> int:
    """This process's own RSS high-water mark in KiB (VmHWM: unlike ``ru_maxrss``, it
    starts afresh at exec, so the parent's size before exec does not leak in)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_one(process: impls.Process, path: Path) -> dict[str, Any]:
    cpu0, t0 = _cpu_s(), time.perf_counter()
    try:
        renditions, stages = process(path)
    except Exception as e:  # reported per input; the harness keeps going
        return {"ok": False, "error": f"{type(e).__name__}: {e}"[:400]}
    wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    return {
        "ok": True,
        "wall_ms": wall * 1e3,
        "cpu_ms": cpu * 1e3,
        "renditions": [r._asdict() for r in renditions],
        "stages": stages,
    }


def _protocol_stream() -> TextIO:
    """Keep the real stdout for the protocol; point fd 1 and sys.stdout at stderr."""
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    parser.add_argument("impl", choices=impls.IMPLS)
    parser.add_argument("--once", type=Path, help="process this file once, then exit")
    args = parser.parse_args(argv)
    proto = _protocol_stream()

    t0 = time.perf_counter()
    process = impls.load(args.impl)
    ready = {
        "ready": True,
        "pid": os.getpid(),
        "init_ms": (time.perf_counter() - t0) * 1e3,
        # The footprint before any image: interpreter, imports, set-up.
        "base_rss_kb": hwm_kb(),
    }
    if args.once is not None:
        result = run_one(process, args.once)
        result.update(ready)
        result["self_peak_rss_kb"] = hwm_kb()  # cross-check of the launcher's figure
        proto.write(json.dumps(result) + "\n")
        return 0

    proto.write(json.dumps(ready) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        proto.write(json.dumps(run_one(process, Path(request["path"]))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
