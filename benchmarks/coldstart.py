"""Cold start: how long each Lambda handler module takes to import in a fresh interpreter."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from benchmarks.corpus import REPO

HANDLERS = ("processor.entrypoints.handler", "api.handler")

# What a Lambda's environment holds at init, so settings validate and the tracer behaves as
# it does there (Powertools only enables X-Ray when LAMBDA_TASK_ROOT is set).
LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": str(REPO),
    "AWS_LAMBDA_FUNCTION_NAME": "imgpipe-bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "IMGPIPE_BUCKET": "imgpipe-bench",
    "IMGPIPE_TABLE": "imgpipe-bench",
    "IMGPIPE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/imgpipe-bench",
    "IMGPIPE_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/imgpipe-bench-dlq",
    "IMGPIPE_CDN_BASE_URL": "https://d111111abcdef8.cloudfront.net",
    "IMGPIPE_AUTH_MODE": "gateway",
    "IMGPIPE_CURSOR_SECRET": "benchmark-cursor-secret-0123456789",
    "POWERTOOLS_SERVICE_NAME": "imgpipe",
    "POWERTOOLS_METRICS_NAMESPACE": "imgpipe",
}

# What each handler defers to its first invocation (module:function), timed separately: a
# cheap import only moves work to the first event unless that work is small too.
FIRST_EVENT_INIT = {
    "processor.entrypoints.handler": (
        "processor.entrypoints.bootstrap:get_container",
        "processor.entrypoints.handler:tracer",
    ),
    "api.handler": ("api.handler:get_handler",),
}

_TIMER = """
import importlib, json, time
t0 = time.perf_counter()
importlib.import_module({module!r})
t1 = time.perf_counter()
steps, init_error = {{}}, None
for spec in {init!r}:
    t = time.perf_counter()
    try:
        mod, _, fn = spec.partition(":")
        getattr(importlib.import_module(mod), fn)()
    except Exception as e:
        init_error = f"{{spec}}: {{type(e).__name__}}: {{e}}"[:300]
        break
    steps[spec] = (time.perf_counter() - t) * 1e3
print(json.dumps({{"import_ms": (t1 - t0) * 1e3, "init_ms": sum(steps.values()),
                  "steps_ms": steps, "init_error": init_error}}))
"""


def _run(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def import_time(module: str, env: Mapping[str, str], runs: int) -> dict[str, Any]:
    """Median import milliseconds over ``runs`` fresh interpreters, after one warm-up run
    (which also writes the .pyc files a container image would ship), and the median time of
    the set-up the handler defers to its first event."""
    full_env = {**env, **LAMBDA_ENV}
    script = _TIMER.format(module=module, init=FIRST_EVENT_INIT.get(module, ()))
    samples: list[dict[str, Any]] = []
    for i in range(runs + 1):
        done = _run(["-c", script], full_env)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {"module": module, "ok": False, "error": last[:300]}
        if i:
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "module": module,
        "ok": True,
        "median_ms": statistics.median(s["import_ms"] for s in samples),
        "samples_ms": [s["import_ms"] for s in samples],
        "first_event_init": list(FIRST_EVENT_INIT.get(module, ())),
        "init_median_ms": statistics.median(s["init_ms"] for s in samples),
        "init_steps_median_ms": {
            step: statistics.median(s["steps_ms"].get(step, 0.0) for s in samples)
            for step in FIRST_EVENT_INIT.get(module, ())
        },
        "init_error": samples[-1]["init_error"],
        "top": slowest_imports(module, full_env),
    }


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def slowest_imports(module: str, env: Mapping[str, str], n: int = 8) -> list[dict[str, Any]]:
    """Where the import time goes: self time of every module, summed per top-level package
    (from ``-X importtime``; the sums add up to the whole import)."""
    done = _run(["-X", "importtime", "-c", f"import {module}"], env)
    totals: dict[str, int] = {}
    for line in done.stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            root = m.group(4).split(".")[0]
            totals[root] = totals.get(root, 0) + int(m.group(1))
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:n]
    return [{"package": k, "ms": v / 1e3} for k, v in ranked]
