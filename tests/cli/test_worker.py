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
