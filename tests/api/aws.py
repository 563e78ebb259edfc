"""moto for the API tests: one ThreadedMotoServer per worker, fresh resources per test.

The table is built from infra/template.yaml, so the tests cannot drift from what is deployed.
"""

from __future__ import annotations

import functools
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):
    """Reads a CloudFormation template; intrinsic functions (!Ref, !Sub ...) become None."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def table_properties() -> dict[str, Any]:
    template = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)
    props: dict[str, Any] = template["Resources"]["Table"]["Properties"]
    return props


def create_table(dynamodb: Any, name: str) -> None:
    """The image table exactly as infra/template.yaml declares its keys and indexes."""
    props = table_properties()
    dynamodb.create_table(
        TableName=name,
        BillingMode=props["BillingMode"],
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )


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
