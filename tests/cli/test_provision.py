"""Provisioning from infra/template.yaml against the embedded AWS: what it creates, that it is
idempotent, that it delivers events (which moto's CloudFormation would not)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from cli.local.provision import provision
from cli.local.spec import StackSpec, load_spec
from processor.core.events import Kind, parse_body
from tests.cli.conftest import aws_client

pytestmark = pytest.mark.integration

ORIGIN = "http://127.0.0.1:8000"


def unique_spec() -> StackSpec:
    # moto's state is per process and shared by every server in it: one stack name per test.
    return load_spec(
        stack_name=f"t-{uuid.uuid4().hex[:10]}", parameters={"CorsAllowedOrigin": ORIGIN}
    )


def test_provision_is_idempotent_and_matches_the_template(moto_endpoint: str) -> None:
    spec = unique_spec()
    clients = {name: aws_client(name, moto_endpoint) for name in ("s3", "sqs", "dynamodb")}
    first = provision(clients, spec, region="us-east-1")
    second = provision(clients, spec, region="us-east-1")
    assert first == second

    sqs, s3, dynamodb = clients["sqs"], clients["s3"], clients["dynamodb"]
    attrs = sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == str(spec.queue.visibility_timeout)
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == first.dlq_arn
    assert int(redrive["maxReceiveCount"]) == spec.queue.max_receive_count

    notification = s3.get_bucket_notification_configuration(Bucket=spec.bucket)
    (config,) = notification["QueueConfigurations"]
    assert config["QueueArn"] == first.queue_arn
    assert set(config["Events"]) == set(spec.notification.events)
    (rule,) = config["Filter"]["Key"]["FilterRules"]
    assert (rule["Name"].lower(), rule["Value"]) == ("prefix", "raw/")
    # the template's CORS rule, for the local origin: the gallery reads each part's ETag
    (cors,) = s3.get_bucket_cors(Bucket=spec.bucket)["CORSRules"]
    assert cors["AllowedOrigins"] == [ORIGIN]
    assert {"POST", "PUT"} <= set(cors["AllowedMethods"])
    assert "ETag" in cors["ExposeHeaders"]

    table = dynamodb.describe_table(TableName=first.table)["Table"]
    assert table["KeySchema"] == spec.table["KeySchema"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        i["IndexName"] for i in spec.table["GlobalSecondaryIndexes"]
    }


def test_uploads_under_raw_reach_the_queue_and_nothing_else_does(moto_endpoint: str) -> None:
    spec = unique_spec()
    clients = {name: aws_client(name, moto_endpoint) for name in ("s3", "sqs", "dynamodb")}
    resources = provision(clients, spec, region="us-east-1")
    s3, sqs = clients["s3"], clients["sqs"]
    s3.put_object(Bucket=spec.bucket, Key="public/thumbs/x.webp", Body=b"x")
    s3.put_object(Bucket=spec.bucket, Key="raw/a b+c.jpg", Body=b"y")
    s3.delete_object(Bucket=spec.bucket, Key="raw/a b+c.jpg")

    events = []
    deadline = time.monotonic() + 10
    while len(events) < 2 and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            events += parse_body(message["Body"])  # the s3:TestEvent parses to nothing
    assert [(e.kind, e.key) for e in events] == [
        (Kind.created, "raw/a b+c.jpg"),
        (Kind.removed, "raw/a b+c.jpg"),
    ]
