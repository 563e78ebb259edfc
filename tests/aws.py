"""moto for the tests: clients for one endpoint, the image table, fresh resources per test.

The table is built from infra/template.yaml by the same reader the local stack and the
deploy use (``infra.template.table_definition``), so no test can drift from what is deployed.
"""

from __future__ import annotations

import functools
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from infra.template import table_definition
from processor.entrypoints import bootstrap
from tests.conftest import FAKE_AWS_ENV

REGION = "us-east-1"
# The processor tests' bucket and table (tests/processor/conftest.py sets them as settings).
BUCKET = "imgpipe-test-bucket"
TABLE = "imgpipe-test-images"


def create_table(dynamodb: Any, name: str = TABLE) -> None:
    """THE one place tests create the image table: exactly as infra/template.yaml declares it."""
    dynamodb.create_table(TableName=name, **table_definition())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(service: str, endpoint: str | None) -> Any:
    return boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


@dataclass
class Stack:
    endpoint: str | None
    bucket: str
    table: str
    queue_url: str
    s3: Any
    dynamodb: Any
    sqs: Any


@functools.cache
def clients(endpoint: str | None) -> tuple[Any, Any, Any]:
    # Loading a service model costs ~0.1 s per client: build them once per server.
    return client("s3", endpoint), client("dynamodb", endpoint), client("sqs", endpoint)


def make_stack(endpoint: str | None) -> Stack:
    """A bucket, table and queue with unique names (tests share one moto server)."""
    suffix = uuid.uuid4().hex[:10]
    s3, dynamodb, sqs = clients(endpoint)
    bucket, table = f"imgpipe-{suffix}", f"images-{suffix}"
    s3.create_bucket(Bucket=bucket)
    create_table(dynamodb, table)
    queue_url = sqs.create_queue(QueueName=f"process-{suffix}")["QueueUrl"]
    return Stack(endpoint, bucket, table, queue_url, s3, dynamodb, sqs)


def processor_env(monkeypatch: Any) -> Iterator[None]:
    """Fake credentials and the processor's settings, before any client exists; the container
    is dropped before and after (a generator for a fixture to delegate to)."""
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
