"""The parent's side of the worker processes: start, ask, time out, read peak RSS."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from benchmarks.corpus import REPO
from processor.core.errors import WorkerError

WORKER = [sys.executable, "-m", "benchmarks.worker"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of every measured child: glibc limited to 2 malloc arenas, as on `make bench`.

    Without the limit, each libvips thread may get its own 64 MB arena and peak RSS says more
    about glibc than about the pipeline.
    """
    env = dict(os.environ)
    env["MALLOC_ARENA_MAX"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.pop("PYTHONSTARTUP", None)
    env.update(extra or {})
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Worker:
    """A long-lived ``benchmarks.worker`` process serving one implementation."""

    def __init__(self, impl: str, env: Mapping[str, str], log_path: Path, timeout: float = 120):
        self.impl = impl
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [*WORKER, impl],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=REPO,
            env=dict(env),
            text=True,
            bufsize=1,
        )
        self.ready = self.receive(timeout)

    @property
    def stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def send(self, path: Path) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"path": str(path)}) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        with selectors.DefaultSelector() as sel:
            sel.register(self.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                self.close()
                raise WorkerError(f"{self.impl} worker gave no answer in {timeout:.0f} s")
        return self._read_line()

    def _read_line(self) -> dict[str, Any]:
        line = self.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise WorkerError(
                f"{self.impl} worker exited ({self.proc.returncode}):\n{_tail(self.log_path)}"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, path: Path, timeout: float = 600) -> dict[str, Any]:
        self.send(path)
        return self.receive(timeout)

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def run_batch(
    workers: list[Worker], paths: Iterable[Path], timeout: float = 900
) -> tuple[float, list[dict[str, Any]]]:
    """Feed ``paths`` to ``workers``, each taking the next as soon as it is free.

    Returns the wall seconds from the first request to the last answer, and the answers.
    """
    queue = list(paths)
    answers: list[dict[str, Any]] = []
    busy: dict[int, Worker] = {}
    t0 = time.perf_counter()
    with selectors.DefaultSelector() as sel:
        for w in workers:
            sel.register(w.stdout, selectors.EVENT_READ, w)
            if queue:
                w.send(queue.pop(0))
                busy[id(w)] = w
        while busy:
            events = sel.select(timeout)
            if not events:
                raise WorkerError(f"batch: no answer in {timeout:.0f} s")
            for key, _ in events:
                w = key.data
                answers.append(w._read_line())
                del busy[id(w)]
                if queue:
                    w.send(queue.pop(0))
                    busy[id(w)] = w
    return time.perf_counter() - t0, answers


def measure_once(
    impl: str, path: Path, env: Mapping[str, str], log_path: Path, timeout: float = 600
) -> dict[str, Any]:
    """Process one file in a fresh worker and return its answer plus its peak RSS
    (``getrusage(RUSAGE_CHILDREN)`` in a small launcher: see ``benchmarks.memprobe``)."""
    with log_path.open("a") as log:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.memprobe", impl, str(path)],
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO,
                env=dict(env),
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"no answer in {timeout:.0f} s", "peak_rss_kb": 0}
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {
            "ok": False,
            "error": f"exit {done.returncode}: {_tail(log_path, 5)}",
            "peak_rss_kb": 0,
        }
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer
