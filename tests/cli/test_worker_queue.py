"""The SQS event source stand-in against a real queue: a handler that raises returns the whole
batch, successes are deleted and failures end in the dead-letter queue."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from cli.local.invoker import FunctionConfig, InProcessInvoker
from cli.local.worker import MappingConfig, SqsWorker
from tests.cli.conftest import aws_client, queue_count
from tests.cli.handlers import fail_bodies

pytestmark = pytest.mark.integration


def _queues(
    sqs: Any, max_receive_count: int, visibility_timeout_s: int = 1
) -> tuple[str, str, str]:
    # moto's state is per process, shared by every server in it: names are unique per test.
    name = uuid.uuid4().hex[:12]
    dlq = sqs.create_queue(QueueName=f"dlq-{name}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    queue = sqs.create_queue(
        QueueName=f"work-{name}",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return queue, arn, dlq


def test_worker_deletes_successes_and_failures_end_in_the_dead_letter_queue(
    moto_endpoint: str,
) -> None:
    # GIVEN a queue whose messages go to the DLQ after 2 receives, and a handler that
    # reports the messages marked "fail" as batch item failures
    sqs = aws_client("sqs", moto_endpoint)
    # Long enough that a loaded machine deletes every success before it becomes visible again
    # (at 1 s one was delivered twice on a fresh-clone run); the failure returns after it.
    queue, arn, dlq = _queues(sqs, max_receive_count=2, visibility_timeout_s=5)
    for n in range(6):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": n, "fail": n == 4}))
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return fail_bodies(event, context)

    function = FunctionConfig(handler="tests.cli.handlers.fail_bodies", timeout_s=10)
    worker = SqsWorker(
        sqs,
        [InProcessInvoker(handler, function), InProcessInvoker(handler, function)],
        MappingConfig(queue_url=queue, queue_arn=arn, region="us-east-1", wait_time_s=1),
    )
    # WHEN the worker runs until the queue is empty
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while (
            queue_count(sqs, queue) or not queue_count(sqs, dlq)
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert worker.stop(timeout_s=10)
    # THEN five messages were deleted, the failing one came back once, then went to the DLQ
    assert queue_count(sqs, queue) == 0
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["n"] for m in dead] == [4]
    bodies = [json.loads(r["body"])["n"] for e in seen for r in e["Records"]]
    assert sorted(bodies) == [0, 1, 2, 3, 4, 4, 5]
    counts = [
        r["attributes"]["ApproximateReceiveCount"]
        for e in seen
        for r in e["Records"]
        if json.loads(r["body"])["n"] == 4
    ]
    assert counts == ["1", "2"]
    assert worker.stats.succeeded == 5 and worker.stats.failed == 2
    assert not worker.running


def test_a_handler_exception_returns_the_whole_batch(moto_endpoint: str) -> None:
    sqs = aws_client("sqs", moto_endpoint)
    queue, arn, _ = _queues(sqs, max_receive_count=5)
    for n in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": n}))
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]

    def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    invoker = InProcessInvoker(boom, FunctionConfig(handler="x.y"))
    worker = SqsWorker(sqs, [invoker], MappingConfig(queue_url=queue, queue_arn=arn, region="r"))
    settlement = worker.run_batch(messages, invoker)
    assert settlement.succeeded == ()
    assert len(settlement.failed) == 3
    assert "boom" in settlement.reason
    assert queue_count(sqs, queue) == 3  # nothing was deleted
