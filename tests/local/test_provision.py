"""Provisioning from infra/template.yaml: what it creates, that it is idempotent, that it
delivers events (which moto's CloudFormation would not)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from infra import template as cfn
from processor.core.events import Kind, parse_body
from processor.local.provision import provision
from processor.local.spec import StackSpec, load_spec
from tests.local.conftest import aws_client

ORIGIN = "http://127.0.0.1:8000"


def unique_spec() -> StackSpec:
    # moto's state is per process and shared by every server in it: one stack name per test.
    return load_spec(
        stack_name=f"t-{uuid.uuid4().hex[:10]}", parameters={"CorsAllowedOrigin": ORIGIN}
    )


@pytest.mark.unit
def test_spec_takes_names_and_settings_from_the_template() -> None:
    spec = load_spec(stack_name="imgpipe-local", account="123456789012", region="eu-west-1")
    template = cfn.load_template()
    assert spec.bucket == "imgpipe-local-123456789012-eu-west-1"
    assert spec.queue == cfn.queue_settings(template)
    assert spec.queue.max_receive_count >= 1
    assert spec.notification.prefix == "raw/"
    assert set(spec.notification.events) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert spec.table == cfn.table_definition(template)
    assert {i["IndexName"] for i in spec.table["GlobalSecondaryIndexes"]} == {
        "by_created",
        "by_state",
        "by_sha256",
        "by_uploader",
    }
    assert spec.mapping.report_batch_item_failures
    assert spec.mapping.batch_size == int(cfn.parameter_defaults(template)["BatchSize"])
    assert spec.processor.handler == "processor.handler.lambda_handler"
    assert spec.function_name == "imgpipe-local-processor"


@pytest.mark.unit
def test_parameters_override_defaults_and_must_exist() -> None:
    spec = load_spec(parameters={"CorsAllowedOrigin": ORIGIN, "BatchSize": "2"})
    assert spec.cors_rules[0]["AllowedOrigins"] == [ORIGIN]
    assert spec.cors_rules[0]["ExposeHeaders"] == ["ETag"]
    assert spec.mapping.batch_size == 2
    with pytest.raises(ValueError, match="NoSuchParameter"):
        load_spec(parameters={"NoSuchParameter": "x"})


@pytest.mark.unit
def test_function_environment_resolves_what_exists_locally() -> None:
    spec = load_spec()
    env = spec.environment(spec.processor, queue_url="http://q", dlq_url="http://d")
    assert env["IMGPIPE_BUCKET"] == spec.bucket
    assert env["IMGPIPE_TABLE"] == spec.table_name
    assert env["IMGPIPE_QUEUE_URL"] == "http://q"
    assert env["IMGPIPE_RAW_PREFIX"] == "raw/"
    api = spec.environment(spec.api, queue_url="http://q", dlq_url="http://d")
    # CloudFront's domain and the Secrets Manager reference exist only in AWS
    assert "IMGPIPE_CDN_BASE_URL" not in api
    assert "IMGPIPE_CURSOR_SECRET" not in api


@pytest.mark.integration
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


@pytest.mark.integration
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
