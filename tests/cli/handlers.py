"""Tiny Lambda handlers for the invoker tests, importable in a spawned process."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """What the function saw: its records, its context and its environment."""
    return {
        "records": len(event.get("Records", [])),
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "pid": os.getpid(),
        "marker": os.environ.get("IMGPIPE_TEST_MARKER"),
    }


def fail_bodies(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Reports every message whose body says {"fail": true} as a batch item failure."""
    failures = [
        {"itemIdentifier": r["messageId"]}
        for r in event["Records"]
        if json.loads(r["body"]).get("fail")
    ]
    return {"batchItemFailures": failures}


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("boom")


def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
    os._exit(3)  # a native library dying: no exception, no response


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(30)
    return {}


def hog(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Touches 400 MB, a page at a time, as a decoder writing a frame would."""
    block = bytearray(400 * 1024 * 1024)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    return {"touched": len(block)}


def memory(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The memory Lambda's runtime announces to the function."""
    return {"memory_mb": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")}
