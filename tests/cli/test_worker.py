"""The SQS event source stand-in on plain values: Lambda's event shape, partial batch rules,
the context's clock."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cli.local.context import LambdaContext
from cli.local.worker import lambda_event, settle

pytestmark = pytest.mark.unit

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


def test_powertools_reads_the_event() -> None:
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

    event = SQSEvent(lambda_event([MESSAGE], queue_arn="arn:q", region="us-east-1"))
    (record,) = list(event.records)
    assert record.message_id == "m-1"
    assert record.attributes.approximate_receive_count == "2"
    assert record.event_source_arn == "arn:q"


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


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    settlement = settle(["a", "b"], response, report_batch_item_failures=False)
    assert settlement.succeeded == ("a", "b")


def test_context_counts_down_from_the_timeout() -> None:
    context = LambdaContext(function_name="f", invoked_function_arn="arn:f", timeout_s=2)
    first = context.get_remaining_time_in_millis()
    assert 1000 < first <= 2000
    assert context.aws_request_id and context.log_group_name == "/aws/lambda/f"
    expired = LambdaContext(function_name="f", invoked_function_arn="arn:f", timeout_s=0)
    assert expired.get_remaining_time_in_millis() == 0


def test_the_log_says_plainly_when_an_invocation_is_stopped_at_its_timeout() -> None:
    from cli.local.invoker import FunctionTimedOut, MemoryExceeded
    from cli.local.worker import invocation_failed
    from processor.core.errors import InvocationFailed

    stopped = FunctionTimedOut("stopped at the function's timeout of 120 s")
    assert invocation_failed(stopped, 5, 180) == (
        "function timeout: the invocation was stopped at the function's timeout of 120 s; "
        "its 5 messages come back after the queue's visibility timeout (180 s) and run alone"
    )
    grew = MemoryExceeded("exceeded the function's memory (600 MB used of 512 MB)")
    assert invocation_failed(grew, 1, None).startswith("out of memory: the invocation exceeded")
    assert invocation_failed(InvocationFailed("boom"), 2, 9).startswith("invocation failed: boom")


def test_the_log_says_when_a_message_comes_back_and_why() -> None:
    from cli.local.worker import coming_back

    s3_event = (
        '{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},'
        ' "object": {"key": "raw/my+cat.jpg"}}}]}'
    )
    first = {"Body": s3_event, "Attributes": {"ApproximateReceiveCount": "1"}}
    again = {"Body": s3_event, "Attributes": {"ApproximateReceiveCount": "3"}}
    retry = {
        "Body": '{"type": "imgpipe.retry", "kind": "created", "bucket": "b",'
        ' "key": "raw/phone.heic", "tries": 1}',
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {"imgpipe-tries": {"StringValue": "1", "DataType": "String"}},
    }
    assert coming_back(first) is None
    assert coming_back(again) == "raw/my cat.jpg is back (receive 3): it runs alone"
    assert coming_back(retry) == (
        "retry of raw/phone.heic: try 1 was starved of CPU and ran out of time; try 2 runs alone"
    )
    assert coming_back({"Body": "not json", "Attributes": {"ApproximateReceiveCount": "2"}}) == (
        "a message is back (receive 2): it runs alone"
    )
