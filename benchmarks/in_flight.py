"""Images in flight, engine only: one at a time against two threads, interleaved in one run.

    python -m benchmarks.in_flight [ROUNDS]

The corpus' photos and the benchmark's photo set (made once into benchmarks/.cache), twice
each, through one ``Engine``: in a loop, then through a pool of two threads, as the handler
runs a batch with IMGPIPE_IMAGES_AT_ONCE=1 and =2. Rounds alternate the order. Prints wall and
CPU seconds of each round and the ratio of summed wall times (docs/benchmarks.md).
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import corpus
from processor.core.config import EngineConfig
from processor.imaging.engine import Engine


def main(rounds: int) -> None:
    files: list[Path] = [i.path for i in corpus.photo_inputs(corpus.DEFAULT_CORPUS)]
    files += [corpus.DEFAULT_CORPUS / name for name in sorted(corpus.CORPUS_PHOTOS)]
    files *= 2
    engine = Engine(EngineConfig())

    def batch(at_once: int) -> None:
        with ThreadPoolExecutor(at_once) as pool:
            list(pool.map(lambda f: engine.process(f, image_id="in-flight"), files))

    batch(1)  # warm: libvips' first calls, the page cache
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for n in range(rounds):
        for at_once in (1, 2) if n % 2 == 0 else (2, 1):
            wall, cpu = time.perf_counter(), time.process_time()
            batch(at_once)
            times[at_once].append((time.perf_counter() - wall, time.process_time() - cpu))
    for at_once, rows in times.items():
        print(at_once, " ".join(f"{w:.2f}s wall/{c:.2f}s cpu" for w, c in rows))
    one, two = (sum(w for w, _ in times[k]) for k in (1, 2))
    print(f"wall, two in flight / one at a time: {two / one:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
