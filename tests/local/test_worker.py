"""The SQS event source stand-in: Lambda's event shape, partial batch responses, redrive."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest

from processor.local.context import LambdaContext
from processor.local.invoker import FunctionConfig, InProcessInvoker
from processor.local.worker import MappingConfig, SqsWorker, lambda_event, settle
from tests.local.conftest import aws_client, queue_count
from tests.local.handlers import fail_bodies

MESSAGE = {
    "MessageId": "m-1",
    "ReceiptHandle": "r-1",
    "MD5OfBody": "abc",
    "Body": '{"Records": []}',
    "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
    "MessageAttributes": {
        "kind": {"StringValue": "test", "DataType": "String"},
        "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
    },
}


@pytest.mark.unit
def test_lambda_event_has_the_shape_lambda_sends() -> None:
    event = lambda_event([MESSAGE], queue_arn="arn:aws:sqs:us-east-1:1:q", region="us-east-1")
    (record,) = event["Records"]
    assert record["messageId"] == "m-1"
    assert record["receiptHandle"] == "r-1"
    assert record["body"] == '{"Records": []}'
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["md5OfBody"] == "abc"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:1:q"
    assert record["awsRegion"] == "us-east-1"
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "test",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert base64.b64decode(record["messageAttributes"]["blob"]["binaryValue"]) == b"\x00\x01"


@pytest.mark.unit
def test_powertools_reads_the_event() -> None:
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

    event = SQSEvent(lambda_event([MESSAGE], queue_arn="arn:q", region="us-east-1"))
    (record,) = list(event.records)
    assert record.message_id == "m-1"
    assert record.attributes.approximate_receive_count == "2"
    assert record.event_source_arn == "arn:q"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("response", "raised", "succeeded", "failed"),
    [
        (None, None, ("a", "b"), ()),
        ({"batchItemFailures": []}, None, ("a", "b"), ()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, None, ("a",), ("b",)),
        # Lambda: an identifier that is not in the batch fails the whole batch
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None, (), ("a", "b")),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None, (), ("a", "b")),
        ({"batchItemFailures": [{}]}, None, (), ("a", "b")),
        ({"batchItemFailures": "b"}, None, (), ("a", "b")),
        ("not a dict", None, ("a", "b"), ()),
        (None, RuntimeError("boom"), (), ("a", "b")),
    ],
)
def test_settle_follows_lambdas_partial_batch_rules(
    response: Any, raised: Exception | None, succeeded: tuple[str, ...], failed: tuple[str, ...]
) -> None:
    settlement = settle(["a", "b"], response, raised=raised)
    assert (settlement.succeeded, settlement.failed) == (succeeded, failed)
    assert bool(settlement.reason) == (not succeeded)


@pytest.mark.unit
def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    settlement = settle(["a", "b"], response, report_batch_item_failures=False)
    assert settlement.succeeded == ("a", "b")


@pytest.mark.unit
def test_context_counts_down_from_the_timeout() -> None:
    context = LambdaContext(function_name="f", invoked_function_arn="arn:f", timeout_s=2)
    first = context.get_remaining_time_in_millis()
    assert 1000 < first <= 2000
    assert context.aws_request_id and context.log_group_name == "/aws/lambda/f"
    expired = LambdaContext(function_name="f", invoked_function_arn="arn:f", timeout_s=0)
    assert expired.get_remaining_time_in_millis() == 0


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


@pytest.mark.integration
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

    function = FunctionConfig(handler="tests.local.handlers.fail_bodies", timeout_s=10)
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


@pytest.mark.integration
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
