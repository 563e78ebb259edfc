"""Fixtures of the event-driven processor tests: fake AWS credentials, the image table built
from infra/template.yaml, recorded events, a fake Lambda context, a Lambda-like SQS driver."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from processor import bootstrap
from tests.conftest import FAKE_AWS_ENV

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
TEMPLATE = ROOT / "infra" / "template.yaml"
REGION = "us-east-1"
BUCKET = "imgpipe-test-bucket"
TABLE = "imgpipe-test-images"

# The table as /tmp/common.md describes it; used only while infra/template.yaml has none.
_FALLBACK_TABLE: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [
        {"AttributeName": n, "AttributeType": "S"}
        for n in ("id", "list_pk", "sort_key", "status", "sha256")
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "by_created",
            "KeySchema": [
                {"AttributeName": "list_pk", "KeyType": "HASH"},
                {"AttributeName": "sort_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
        {
            "IndexName": "by_status",
            "KeySchema": [
                {"AttributeName": "status", "KeyType": "HASH"},
                {"AttributeName": "sort_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
        {
            "IndexName": "by_sha256",
            "KeySchema": [{"AttributeName": "sha256", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
        },
    ],
}


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: intrinsic tags (!Ref, !Sub, !GetAtt...) become plain data."""


def _intrinsic(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_CfnLoader.add_multi_constructor("!", _intrinsic)


def table_definition() -> dict[str, Any]:
    """The image table's key schema and indexes, from infra/template.yaml when it has one."""
    if TEMPLATE.exists():
        template = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)
        for resource in (template.get("Resources") or {}).values():
            if resource.get("Type") == "AWS::DynamoDB::Table":
                props = resource["Properties"]
                return {
                    k: props[k]
                    for k in (
                        "BillingMode",
                        "KeySchema",
                        "AttributeDefinitions",
                        "GlobalSecondaryIndexes",
                    )
                    if k in props
                }
    return _FALLBACK_TABLE


def create_table(client: Any, name: str = TABLE) -> None:
    """THE one place tests create the image table."""
    client.create_table(TableName=name, **table_definition())


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


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and the processor's settings, before any client exists."""
    for name, value in {
        **FAKE_AWS_ENV,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "IMGPIPE_BUCKET": BUCKET,
        "IMGPIPE_TABLE": TABLE,
        "IMGPIPE_RAW_PREFIX": "raw/",
        "IMGPIPE_PUBLIC_PREFIX": "public/",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "imgpipe",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("IMGPIPE_ENDPOINT_URL", "IMGPIPE_QUEUE_URL", "IMGPIPE_DLQ_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    bootstrap.reset()
    yield
    bootstrap.reset()


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
                "messageAttributes": {},
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


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """A function returning every JSON log line the processor wrote so far in the test."""
    from processor.handler import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield read
    handler.setStream(previous)
