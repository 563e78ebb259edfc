"""``python -m benchmarks.memprobe IMPL PATH``: peak RSS of one worker, read as its parent.

A small launcher on purpose. Linux carries a process's RSS high-water mark across fork and
exec, so a child forked from the big harness process would start its ``ru_maxrss`` at the
harness's own size. Forked from this launcher (a bare interpreter, about 10 MB, smaller
than any worker), the worker's ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is its own peak.
Imports nothing heavy for the same reason.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def main(argv: list[str]) -> int:
    impl, path = argv
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", impl, "--once", path],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    answer = json.loads(lines[-1]) if lines else {"ok": False, "error": f"exit {done.returncode}"}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    answer["peak_rss_kb"] = usage.ru_maxrss  # KiB on Linux
    answer["child_cpu_ms"] = (usage.ru_utime + usage.ru_stime) * 1e3
    answer["launcher_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
