"""What Lambda hands a handler, for tests: recorded events (tests/events/), a context with a
working clock, and a driver that acts as the SQS event source mapping."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.aws import REGION

EVENTS = Path(__file__).resolve().parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A recorded event from tests/events/, by name."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


@dataclass
class FakeLambdaContext:
    function_name: str = "imgpipe-processor"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-processor"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/imgpipe-processor"
    log_stream_name: str = "2024/05/01/[$LATEST]abcdef"
    timeout_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get(
                        "ApproximateReceiveCount", "1"
                    ),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                    "SenderId": m.get("Attributes", {}).get("SenderId", "AIDAEXAMPLE"),
                    "ApproximateFirstReceiveTimestamp": m.get("Attributes", {}).get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


@dataclass
class DrainReport:
    invocations: int = 0
    messages: int = 0  # deliveries, retries included
    failures: int = 0  # deliveries reported failed (batchItemFailures)
    bodies_failed: list[str] = field(default_factory=list)


def drain(
    sqs: Any, queue_url: str, handler: Any, *, batch_size: int = 10, max_rounds: int = 200
) -> DrainReport:
    """Act as Lambda's SQS event source mapping until the queue is empty.

    Receive a batch, invoke the handler, delete the messages it did not report failed, and
    make the failed ones visible again at once (SQS would wait out the visibility timeout).
    The queue's redrive policy moves a message to the dead-letter queue past maxReceiveCount.
    """
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    report = DrainReport()
    empty = 0
    for _ in range(max_rounds):
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch_size,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not received:
            empty += 1
            if empty >= 2:
                return report
            continue
        empty = 0
        report.invocations += 1
        report.messages += len(received)
        response = handler(sqs_lambda_event(received, arn), FakeLambdaContext())
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        report.failures += len(failed)
        for m in received:
            if m["MessageId"] in failed:
                report.bodies_failed.append(m["Body"])
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    raise AssertionError(f"the queue did not drain in {max_rounds} rounds: {report}")
