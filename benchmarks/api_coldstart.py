"""Cold-start benchmark of the API Lambda: ``python -m benchmarks.api_coldstart [--runs N]``.

Each sample is a fresh interpreter, as on a new Lambda container:

* ``import_ms``: ``import api.handler`` (what the Lambda init phase runs; budget 300 ms);
* ``first_event_ms``: import, then the first event (GET /healthz through Mangum), which builds
  the FastAPI app and validates the settings: the real cold latency of the first request.

Prints the median and the spread as JSON. ``measure()`` is importable by benchmarks/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: the probe imports api.handler

_PROBE = """
import json, time
t0 = time.perf_counter()
import api.handler
t1 = time.perf_counter()
event = {
    "version": "2.0", "routeKey": "GET /{proxy+}", "rawPath": "/healthz", "rawQueryString": "",
    "headers": {"host": "example.execute-api.us-east-1.amazonaws.com"},
    "requestContext": {"http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1",
                                "sourceIp": "203.0.113.10", "userAgent": "coldstart"},
                       "stage": "$default", "requestId": "x", "routeKey": "GET /{proxy+}",
                       "accountId": "123456789012", "apiId": "example", "timeEpoch": 0,
                       "domainName": "example.execute-api.us-east-1.amazonaws.com"},
    "isBase64Encoded": False,
}
response = api.handler.lambda_handler(event, None)
t2 = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_event_ms": (t2 - t0) * 1000}))
"""

# Only what the settings need to validate; no AWS call is made by /healthz.
_ENV = {
    "IMGPIPE_BUCKET": "coldstart-bucket",
    "IMGPIPE_TABLE": "coldstart-table",
    "IMGPIPE_CDN_BASE_URL": "https://cdn.example",
    "IMGPIPE_CURSOR_SECRET": "coldstart-secret-0123456789",
    "IMGPIPE_AUTH_MODE": "gateway",
}


def _sample() -> dict[str, float]:
    env = {**os.environ, **_ENV}
    env.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(runs: int = 7) -> dict[str, dict[str, float]]:
    _sample()  # warm the OS page cache and .pyc files, as a reused Lambda image would have
    samples = [_sample() for _ in range(runs)]
    report: dict[str, dict[str, float]] = {}
    for name in ("import_ms", "first_event_ms"):
        values = sorted(s[name] for s in samples)
        report[name] = {
            "median": round(statistics.median(values), 1),
            "min": round(values[0], 1),
            "max": round(values[-1], 1),
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    report = measure(args.runs)
    report["budget_ms"] = {"import": 300.0}
    print(json.dumps(report, indent=2))  # noqa: T201  # a command's output
    return 0 if report["import_ms"]["median"] <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
