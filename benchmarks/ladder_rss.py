"""``python -m benchmarks.ladder_rss LADDER PATH``: peak RSS of processing one photo with one
of benchmarks.bytes' ladders (``before``, ``default``, ``unscored``), read as its parent.

The same launcher pattern as benchmarks.memprobe: this module imports nothing heavy, runs
itself with ``--work`` in a child and reads the child's high-water mark from
``RUSAGE_CHILDREN``, so the peak is the worker's own and not the harness's it was forked
from. The worker prints its RSS before processing (the engine imported, libvips started),
so the peak above that is the image's.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def work(ladder: str, path: str) -> None:
    from benchmarks.bytes import ladders
    from processor.imaging.engine import Engine

    engine = Engine(ladders()[ladder])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.process(path, image_id="bench", versioned=False)
    print(json.dumps({"base_kb": base}))


def probe(ladder: str, path: str) -> dict[str, int]:
    """What ``measure`` says, from a fresh launcher: a process forked from a big harness
    starts its high-water mark at the harness's size, so the harness never measures itself."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ladder_rss", ladder, path],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    answer: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def measure(ladder: str, path: str) -> dict[str, int]:
    """{peak_kb, base_kb} of one child processing ``path`` with ``ladder`` (call it in the
    launcher, as ``python -m benchmarks.ladder_rss``: see ``probe``)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ladder_rss", "--work", ladder, path],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    answer: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    answer["peak_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return answer


if __name__ == "__main__":
    if sys.argv[1] == "--work":
        work(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(measure(sys.argv[1], sys.argv[2])))
