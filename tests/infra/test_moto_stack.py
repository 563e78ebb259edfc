"""The part of the stack moto's CloudFormation can create, created from the template itself.

moto skips bucket notifications, public access blocks, lifecycle rules, queue policies and
alarms (test_wiring checks those from the declarations). What it does create must come out as
declared: queue timings and redrive, the table's keys and indexes, the topic, the bucket name
and encryption, and the processor wired to the queue with the real physical names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import template as tpl
from tests.infra.conftest import ACCOUNT, FAKE_REFS, MOTO_STAND_INS, MOTO_TYPES, REGION, STACK

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(aws_env: None, template: dict[str, Any]) -> Iterator[dict[str, str]]:
    body = json.dumps(tpl.subset_template(template, MOTO_TYPES, MOTO_STAND_INS))
    parameters = [
        {"ParameterKey": k, "ParameterValue": FAKE_REFS[k]}
        for k in ("ProcessorImageUri", "ApiImageUri", "AlertEmail")
    ]
    with mock_aws():
        cfn = boto3.client("cloudformation")
        cfn.create_stack(
            StackName=STACK,
            TemplateBody=body,
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM"],
        )
        (described,) = cfn.describe_stacks(StackName=STACK)["Stacks"]
        assert described["StackStatus"] == "CREATE_COMPLETE"
        yield {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def test_outputs_name_the_created_resources(stack: dict[str, str]) -> None:
    assert stack["BucketName"] == f"{STACK}-{ACCOUNT}-{REGION}"
    assert stack["TableName"] in boto3.client("dynamodb").list_tables()["TableNames"]
    assert stack["TopicArn"] in {t["TopicArn"] for t in boto3.client("sns").list_topics()["Topics"]}
    urls = boto3.client("sqs").list_queues()["QueueUrls"]
    assert {
        stack["QueueUrl"],
        stack["DeadLetterQueueUrl"],
        stack["InvalidationQueueUrl"],
        stack["InvalidationDeadLetterQueueUrl"],
    } == set(urls)


def test_queue_has_declared_timings_encryption_and_redrive(stack: dict[str, str]) -> None:
    sqs = boto3.client("sqs")
    settings = tpl.queue_settings()
    attrs = sqs.get_queue_attributes(QueueUrl=stack["QueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    dlq = sqs.get_queue_attributes(QueueUrl=stack["DeadLetterQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert int(attrs["VisibilityTimeout"]) == settings.visibility_timeout
    assert int(attrs["MessageRetentionPeriod"]) == settings.message_retention
    assert attrs["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == settings.max_receive_count
    assert int(dlq["MessageRetentionPeriod"]) == settings.dlq_message_retention
    assert "RedrivePolicy" not in dlq


def test_table_has_the_shared_keys_and_indexes(stack: dict[str, str]) -> None:
    table = boto3.client("dynamodb").describe_table(TableName=stack["TableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by_created", "by_state", "by_sha256", "by_uploader"}
    assert indexes["by_created"]["KeySchema"] == [
        {"AttributeName": "list_pk", "KeyType": "HASH"},
        {"AttributeName": "sort_key", "KeyType": "RANGE"},
    ]
    assert {n: i["Projection"]["ProjectionType"] for n, i in indexes.items()} == {
        "by_created": "INCLUDE",
        "by_state": "INCLUDE",
        "by_sha256": "KEYS_ONLY",
        "by_uploader": "KEYS_ONLY",
    }


def test_bucket_is_encrypted(stack: dict[str, str]) -> None:
    rules = boto3.client("s3").get_bucket_encryption(Bucket=stack["BucketName"])[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_processor_runs_its_image_with_the_real_names_and_consumes_the_queue(
    stack: dict[str, str],
) -> None:
    lam = boto3.client("lambda")
    function = lam.get_function(FunctionName=f"{STACK}-processor")
    assert function["Code"]["ImageUri"] == FAKE_REFS["ProcessorImageUri"]
    env = function["Configuration"]["Environment"]["Variables"]
    expected = tpl.function_env(
        "processor",
        {
            "Bucket": stack["BucketName"],
            "Table": stack["TableName"],
            "Queue": stack["QueueUrl"],
            "DeadLetterQueue": stack["DeadLetterQueueUrl"],
            "InvalidationQueue": stack["InvalidationQueueUrl"],
            **MOTO_STAND_INS,
            # What a stand-in's attribute becomes (infra/template.py subset_template).
            "Distribution.DomainName": "Distribution.DomainName.stand-in",
            "AWS::StackName": STACK,
        },
    )
    assert {k: str(v) for k, v in env.items()} == expected
    (mapping,) = lam.list_event_source_mappings(FunctionName=f"{STACK}-processor")[
        "EventSourceMappings"
    ]
    queue_arn = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
