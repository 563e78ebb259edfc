"""infra/template.py's helpers give input boto3 (against moto) accepts as it is."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from infra import template as tpl

pytestmark = pytest.mark.integration


def test_helper_outputs_are_valid_boto3_input(aws_env: None) -> None:
    """What the local stack does with these helpers works against moto as-is."""
    with mock_aws():
        ddb = boto3.client("dynamodb")
        ddb.create_table(TableName="images", **tpl.table_definition())
        table = ddb.describe_table(TableName="images")["Table"]
        assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
            "by_created",
            "by_state",
            "by_sha256",
            "by_uploader",
        }

        sqs = boto3.client("sqs")
        settings = tpl.queue_settings()
        dlq = sqs.create_queue(QueueName="dlq", Attributes=settings.dlq_attributes())["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queue = sqs.create_queue(QueueName="q", Attributes=settings.queue_attributes(dlq_arn))
        attrs = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["All"])[
            "Attributes"
        ]
        assert attrs["VisibilityTimeout"] == str(settings.visibility_timeout)
        assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn
        queue_arn = attrs["QueueArn"]

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="uploads")
        config = tpl.notification_filter().queue_configuration(queue_arn)
        s3.put_bucket_notification_configuration(
            Bucket="uploads", NotificationConfiguration={"QueueConfigurations": [config]}
        )
        (stored,) = s3.get_bucket_notification_configuration(Bucket="uploads")[
            "QueueConfigurations"
        ]
        assert stored["QueueArn"] == queue_arn
        assert set(stored["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
        assert stored["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "raw/"}]
