"""A function timeout through the local stack: the invocation is stopped, and the records agree.

GIVEN the local stack with a 20 s processor timeout and a 22 s visibility timeout (the
template's 120 s and 180 s, scaled down), in front of an S3 that holds the reads of two
uploads longer than the function may run: one the first time only, one every time
WHEN both are uploaded with a good image
THEN the one stopped once is done on its next delivery, its record saying two tries; the one
stopped every time is failed `interrupted` after two tries instead of sitting in `processing`
until the dead-letter queue; the good one is done; the worker's log says "function timeout"
for every stopped invocation; nothing waits and nothing is dead.

The stall is in S3, not in the machine: the invocation cannot finish before its timeout
however fast or loaded the machine is, so nothing here depends on load or compares times.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cli.local.stack import LocalStack, StackOptions
from processor.core.keys import image_id
from tests.containers.fault_proxy import FaultProxy

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("local_stack"),
    pytest.mark.timeout(420),
]

FUNCTION_TIMEOUT_S = 20  # a cold environment's first image fits it on a busy machine


def jpeg(path: Path, n: int) -> Path:
    import pyvips

    (pyvips.Image.black(320, 240, bands=3) + 40 * n).cast("uchar").jpegsave(str(path))
    return path


def test_an_invocation_stopped_at_its_timeout_leaves_no_record_processing(
    moto_endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.cli.conftest import aws_client, queue_count, wait_final

    caplog.set_level(logging.INFO, logger="cli.local")
    proxy = FaultProxy(moto_endpoint).start()
    stack = LocalStack(
        StackOptions(
            api_port=0,
            endpoint_url=proxy.url,  # the processor reads S3 through the proxy
            stack_name=f"timeout-{uuid.uuid4().hex[:8]}",
            concurrency=1,
            function_memory_mb=1024,  # one image at a time
            function_timeout_s=FUNCTION_TIMEOUT_S,
            # at least the timeout plus the template's 1 s batch window, as the template's
            visibility_timeout_s=FUNCTION_TIMEOUT_S + 2,
            function_environment={
                # every image of a batch may start within the 20 s (the defaults want 40 s),
                # even after a cold environment's first image took much of it
                "IMGPIPE_IMAGE_TIME_BUDGET_S": "2",
                "IMGPIPE_TIME_RESERVE_S": "0.3",
                "IMGPIPE_RETRY_DELAY_S": "1",
            },
        )
    )
    try:
        stack.start()
        assert stack.resources is not None
        s3, sqs, dynamodb = (aws_client(name, moto_endpoint) for name in ("s3", "sqs", "dynamodb"))
        bucket = stack.resources.bucket
        proxy.stall(bucket, "raw/stopped-once.jpg", times=1, seconds=60)
        proxy.stall(bucket, "raw/stopped-always.jpg", times=10, seconds=60)
        ids = {}
        for n, name in enumerate(["stopped-once.jpg", "stopped-always.jpg", "good.jpg"]):
            key = f"raw/{name}"
            s3.upload_file(str(jpeg(tmp_path / name, n)), bucket, key)
            ids[name] = image_id(bucket, key)
        records = wait_final(dynamodb, stack.resources.table, ids, timeout_s=300)
        stalls = proxy.stalls
        dead = queue_count(sqs, stack.resources.dlq_url)
        left = _wait_empty(sqs, stack.resources.queue_url, timeout_s=30)
    finally:
        stack.stop()
        proxy.stop()

    # THEN the one stopped once is done on its next try, and says so
    once = records["stopped-once.jpg"]
    assert (once["status"], once["tries"]) == ("done", 2), once
    # ... the one stopped every time is failed after two tries, not left processing
    always = records["stopped-always.jpg"]
    assert (always["status"], always["error"]["code"], always["tries"]) == (
        "failed",
        "interrupted",
        2,
    ), always
    assert records["good.jpg"]["status"] == "done"
    # ... each stop was a read held past the timeout: one, then two (the third try was not made)
    assert stalls == 3
    # ... the worker said so plainly, once per stopped invocation
    stopped = [
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("function timeout: the invocation was stopped")
    ]
    assert len(stopped) == 3, stopped
    assert f"function's timeout of {FUNCTION_TIMEOUT_S} s" in stopped[0]
    assert f"visibility timeout ({FUNCTION_TIMEOUT_S + 2} s)" in stopped[0]
    assert any("is back (receive" in r.getMessage() for r in caplog.records)
    # ... and nothing waits or is dead
    assert dead == 0 and left == 0


def _wait_empty(sqs: Any, url: str, timeout_s: float) -> int:
    """Messages left on the queue once what the last invocations hold is settled."""
    from tests.cli.conftest import queue_count

    deadline = time.monotonic() + timeout_s
    while (left := queue_count(sqs, url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left
