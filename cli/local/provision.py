"""Create the pipeline's resources with boto3, idempotently, from a ``StackSpec``.

The spec comes from ``infra/template.yaml`` (see ``cli.local.spec``), so the local stack
and the deployed one cannot drift. CloudFormation is not used because moto's implementation
silently skips a bucket's notification configuration (and queue policies and alarms): a stack
created there never delivers an event. Running this twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cli.local.spec import StackSpec
from processor.aws.errors import error_code

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provisioned:
    bucket: str
    table: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    distribution_id: str = ""  # the CloudFront distribution ("" when there is none)
    event_bus: str = ""  # the completion events' bus ("" when there is none)
    # Deleted images' CDN paths, for the flusher ("" when the template declares none).
    invalidation_queue_url: str = ""
    invalidation_queue_arn: str = ""


def local_cors_rules(origins: list[str]) -> list[dict[str, Any]]:
    """Browser uploads from these origins: presigned POST, part PUTs whose ETag the page reads."""
    return [
        {
            "AllowedOrigins": origins,
            "AllowedMethods": ["GET", "HEAD", "POST", "PUT"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3000,
        }
    ]


def ensure_bucket(s3: Any, spec: StackSpec, region: str, cors_rules: list[dict[str, Any]]) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=spec.bucket)
        else:
            s3.create_bucket(
                Bucket=spec.bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        log.info("created bucket %s", spec.bucket)
    except Exception as e:
        if error_code(e) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    if cors_rules:
        s3.put_bucket_cors(Bucket=spec.bucket, CORSConfiguration={"CORSRules": cors_rules})


def ensure_versioning(s3: Any, spec: StackSpec) -> None:
    """Versioned like the template's bucket, so that erasing deleted images is tested."""
    if spec.versioned:
        s3.put_bucket_versioning(Bucket=spec.bucket, VersioningConfiguration={"Status": "Enabled"})


def ensure_distribution(cloudfront: Any, spec: StackSpec) -> str:
    """The template's distribution in the embedded AWS's CloudFront API; its id."""
    config = spec.distribution
    if config is None:
        return ""
    for page in cloudfront.get_paginator("list_distributions").paginate():
        for item in page.get("DistributionList", {}).get("Items", []):
            if item.get("Comment") == config["Comment"]:
                return str(item["Id"])
    created = cloudfront.create_distribution(DistributionConfig=config)
    log.info("created distribution %s", created["Distribution"]["Id"])
    return str(created["Distribution"]["Id"])


def ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """(url, arn) of the queue, created or brought to ``attributes``."""
    try:
        url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    except Exception as e:
        # An existing queue with other attributes: adopt it and set what the spec says.
        if error_code(e) not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        if attributes:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, str(arn)


def ensure_table(dynamodb: Any, spec: StackSpec) -> None:
    try:
        dynamodb.create_table(TableName=spec.table_name, **spec.table)
        log.info("created table %s", spec.table_name)
    except Exception as e:
        if error_code(e) != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=spec.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def ensure_event_bus(events: Any, name: str) -> None:
    try:
        events.create_event_bus(Name=name)
        log.info("created event bus %s", name)
    except Exception as e:
        if error_code(e) != "ResourceAlreadyExistsException":
            raise


def ensure_notifications(s3: Any, spec: StackSpec, queue_arn: str) -> None:
    # PutBucketNotificationConfiguration replaces the whole configuration: idempotent.
    s3.put_bucket_notification_configuration(
        Bucket=spec.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [spec.notification.queue_configuration(queue_arn)]
        },
    )


def provision(
    clients: dict[str, Any],
    spec: StackSpec,
    *,
    region: str,
    browser_origins: list[str] | None = None,
) -> Provisioned:
    """Bucket (versioned as declared), the CDN's distribution (with a ``cloudfront`` client),
    dead-letter queue, queue with redrive, raw/ -> queue notification, the invalidations
    queue and its dead-letter queue, table.

    The template's CORS rules win; without any, ``browser_origins`` (the local gallery) may
    upload straight to the bucket as the gallery does.
    """
    s3, sqs, dynamodb = clients["s3"], clients["sqs"], clients["dynamodb"]
    cors = spec.cors_rules or (local_cors_rules(browser_origins) if browser_origins else [])
    ensure_bucket(s3, spec, region, cors)
    ensure_versioning(s3, spec)
    distribution_id = (
        ensure_distribution(clients["cloudfront"], spec) if "cloudfront" in clients else ""
    )
    dlq_url, dlq_arn = ensure_queue(sqs, spec.dlq_name, spec.queue.dlq_attributes())
    queue_url, queue_arn = ensure_queue(sqs, spec.queue_name, spec.queue.queue_attributes(dlq_arn))
    ensure_notifications(s3, spec, queue_arn)
    invalidations = ("", "")
    if spec.invalidation_queue is not None:
        _, flush_dlq_arn = ensure_queue(
            sqs, spec.invalidation_dlq_name, spec.invalidation_queue.dlq_attributes()
        )
        invalidations = ensure_queue(
            sqs,
            spec.invalidation_queue_name,
            spec.invalidation_queue.queue_attributes(flush_dlq_arn),
        )
    ensure_table(dynamodb, spec)
    if spec.event_bus and "events" in clients:
        ensure_event_bus(clients["events"], spec.event_bus)
    return Provisioned(
        bucket=spec.bucket,
        table=spec.table_name,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        distribution_id=distribution_id,
        event_bus=spec.event_bus if "events" in clients else "",
        invalidation_queue_url=invalidations[0],
        invalidation_queue_arn=invalidations[1],
    )
