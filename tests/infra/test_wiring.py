"""The template's wiring, checked from the template itself.

moto creates only part of the stack and skips bucket notifications, queue policies, alarms and
IAM evaluation, so these checks read the declarations: what sends to what, with which filter,
and who may touch which resource.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from infra import template as tpl
from infra.item_size import index_entry, key_names
from processor.aws.dynamo import LISTED, serialize, to_item
from processor.core.keys import DEFAULT_SHARDS, MAX_SHARDS, shard_of
from processor.core.record import ImageFacts, ImageRecord, Status
from tests.infra.conftest import FAKE_REFS, ROOT

pytestmark = pytest.mark.unit

# Symbolic ARNs, so that a policy statement reads as "which resource", not as a long string.
BUCKET_ARN = "arn:aws:s3:::BUCKET"
TABLE_ARN = "arn:aws:dynamodb:TABLE"
SYMBOLS = {
    **FAKE_REFS,
    "Bucket.Arn": BUCKET_ARN,
    "Table.Arn": TABLE_ARN,
    "Queue.Arn": "QUEUE",
    "DeadLetterQueue.Arn": "DLQ",
    "InvalidationQueue.Arn": "INVALIDATIONS",
    "InvalidationDeadLetterQueue.Arn": "DLQ:invalidations",
    "FlushLogGroup.Arn": "LOGS:flush",
    "ProcessorLogGroup.Arn": "LOGS:processor",
    "ApiLogGroup.Arn": "LOGS:api",
    "AuthorizerLogGroup.Arn": "LOGS:authorizer",
    "OnDemandLogGroup.Arn": "LOGS:sizes",
    "ApiKeySecret": "SECRET:api-key",
    "Distribution": "DISTRIBUTION",
}


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def grants(
    template: dict[str, Any], role: str, refs: dict[str, Any] | None = None
) -> set[tuple[str, str]]:
    """(action, resource) pairs a role's inline policies allow, resources made symbolic;
    ``refs`` give parameters other values (a statement under a condition)."""
    pairs: set[tuple[str, str]] = set()
    symbols = {**SYMBOLS, **(refs or {})}
    for policy in props(template, role)["Policies"]:
        statements = tpl.resolve(policy["PolicyDocument"]["Statement"], symbols, template)
        for statement in statements:
            assert statement["Effect"] == "Allow", statement
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            found = statement["Resource"]
            found = [found] if isinstance(found, str) else found
            pairs |= {(a, r) for a in actions for r in found}
    return pairs


# ------------------------------------------------------------------ S3 -> SQS -> Lambda ------


def test_bucket_notifies_the_processing_queue_for_raw_creates_and_removes(
    template: dict[str, Any],
) -> None:
    notification = tpl.notification_filter(template)
    assert notification.queue == "Queue"
    assert set(notification.events) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert notification.prefix == "raw/"
    # The processor is told the same prefix it is notified for.
    assert tpl.function_env("processor", template=template)["IMGPIPE_RAW_PREFIX"] == "raw/"
    assert tpl.function_env("api", template=template)["IMGPIPE_RAW_PREFIX"] == "raw/"


def test_processor_consumes_the_notified_queue_with_partial_batch_failures(
    template: dict[str, Any],
) -> None:
    source = tpl.event_source(template, "processor")
    assert source["EventSource"] == tpl.notification_filter(template).queue
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= int(source["BatchSize"]) <= 10
    assert int(source["ScalingConfig"]["MaximumConcurrency"]) >= 2


def test_bucket_queue_policy_cycle_is_broken(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["Bucket"]
    policy = props(template, "QueuePolicy")
    # The bucket waits for the policy, and the policy names the bucket without referring to it.
    assert bucket["DependsOn"] in ("QueuePolicy", ["QueuePolicy"])
    assert "Bucket" not in tpl.references(policy)
    (send,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert send["Principal"] == {"Service": "s3.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert tpl.references(send["Resource"]) == {"Queue"}
    source_arn = tpl.resolve(send["Condition"]["ArnEquals"]["aws:SourceArn"], FAKE_REFS, template)
    bucket_name = tpl.resolve(bucket["Properties"]["BucketName"], FAKE_REFS, template)
    assert source_arn == f"arn:aws:s3:::{bucket_name}"
    assert tpl.references(policy["Queues"]) == {"Queue"}


def test_redrive_goes_to_the_dead_letter_queue(template: dict[str, Any]) -> None:
    redrive = props(template, "Queue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    settings = tpl.queue_settings(template)
    assert 3 <= settings.max_receive_count <= 10
    # SQS keeps a message's original enqueue time in the DLQ: it must outlive the source queue.
    assert settings.dlq_message_retention > settings.message_retention
    assert "RedrivePolicy" not in props(template, "DeadLetterQueue")


def test_a_record_left_processing_by_a_dead_invocation_is_taken_up_within_minutes(
    template: dict[str, Any],
) -> None:
    """The queue's visibility timeout, the function's timeout and the records' `processing`
    state agree (docs/processor.md, "What it guarantees")."""
    from processor.entrypoints.settings import ProcessorSettings
    from processor.rules.tries import MAX_INTERRUPTED

    timeout = tpl.function_spec("processor", template=template).timeout
    longest_window = int(template["Parameters"]["BatchWindowSeconds"]["MaxValue"])
    queue = tpl.queue_settings(template)
    visibility = queue.visibility_timeout
    # Not delivered again while the invocation that received it may still run (Lambda refuses
    # a mapping whose queue's visibility timeout is below the function's timeout).
    assert visibility >= timeout + longest_window
    # A message whose invocation died comes back within a few minutes: the record it left
    # `processing` is taken up again then, not a quarter of an hour later.
    assert visibility <= 5 * 60
    # After MAX_INTERRUPTED deaths the next delivery records the image failed: before the
    # message could reach the dead-letter queue, and within the queue-age alarm's 15 minutes.
    assert MAX_INTERRUPTED + 1 <= queue.max_receive_count
    assert (MAX_INTERRUPTED + 1) * visibility <= 15 * 60
    # An invocation starts an image only with its budget and reserve left: the defaults fit.
    defaults = ProcessorSettings.model_fields
    budget = defaults["image_time_budget_s"].default + defaults["time_reserve_s"].default
    assert budget <= timeout
    # A try starved of CPU comes back delayed on the same queue (SQS delays 900 s at most).
    assert 0 < defaults["retry_delay_s"].default <= 900
    env = tpl.function_env("processor", template=template)
    assert tpl.references(env["IMGPIPE_QUEUE_URL"]) == {"Queue"}
    assert ("sqs:SendMessage", "QUEUE") in grants(template, "ProcessorRole")


def test_queues_are_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    for queue in ("Queue", "DeadLetterQueue"):
        assert props(template, queue)["SqsManagedSseEnabled"] is True
    statements = props(template, "QueuePolicy")["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


# ------------------------------------------------------------------ table --------------------


def test_table_schema_is_the_shared_contract(template: dict[str, Any]) -> None:
    table = tpl.table_definition(template)
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]} == {
        "id": "S",
        "list_pk": "S",
        "sort_key": "S",
        "state_pk": "S",
        "sha256": "S",
        "uploader_pk": "S",
    }
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    keys = {
        name: [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]]
        for name, i in indexes.items()
    }
    assert keys == {
        "by_created": [("list_pk", "HASH"), ("sort_key", "RANGE")],
        "by_state": [("state_pk", "HASH"), ("sort_key", "RANGE")],
        "by_sha256": [("sha256", "HASH")],
        "by_uploader": [("uploader_pk", "HASH"), ("sort_key", "RANGE")],
    }
    # Listings are Queries only: their indexes carry what a listed record holds, no more.
    listed = {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(LISTED)}
    assert indexes["by_created"]["Projection"] == listed
    assert indexes["by_state"]["Projection"] == listed
    assert indexes["by_sha256"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert indexes["by_uploader"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    table_props = props(template, "Table")
    assert table_props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # Kept when the stack goes, removed when its first create fails (test_first_deploy*).
    assert template["Resources"]["Table"]["DeletionPolicy"] == "RetainExceptOnCreate"


def _indexes_holding(record: ImageRecord, table: dict[str, Any]) -> dict[str, str]:
    """Index name -> partition-key value, for every index the stored item is in."""
    item = serialize(to_item(record))
    table_keys = key_names(table["KeySchema"])
    out = {}
    for index in table["GlobalSecondaryIndexes"]:
        entry = index_entry(item, index, table_keys)
        if entry is not None:
            out[index["IndexName"]] = entry[index["KeySchema"][0]["AttributeName"]]["S"]
    return out


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("uploader", [None, "alice"])
def test_the_items_the_repository_writes_land_in_the_template_indexes(
    template: dict[str, Any], status: Status, uploader: str | None
) -> None:
    # Every index key is "<value>#<shard>"; by_state is sparse (not done), deleted items leave
    # by_created, by_sha256 and by_uploader hold whatever names bytes or an uploader.
    table = tpl.table_definition(template)
    record = ImageRecord(
        id="abcdefghijklmnopqrstuvwxyz",
        source_key="raw/x/a.jpg",
        status=status,
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:00.000000Z",
        uploader=uploader,
        facts=ImageFacts(sha256="ab" * 32, input_bytes=1, format="jpeg", width=1, height=1),
    )
    shard = shard_of(record.id, DEFAULT_SHARDS)
    expected = {"by_sha256": "ab" * 32}
    if status is not Status.deleted:
        expected["by_created"] = f"image#{shard}"
    if status is not Status.done:
        expected["by_state"] = f"{status.value}#{shard}"
    if uploader:
        expected["by_uploader"] = f"{uploader}#{shard}"
    assert _indexes_holding(record, table) == expected


def test_the_shard_count_is_one_parameter_read_by_both_functions(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ListShards"]
    assert int(parameter["Default"]) == DEFAULT_SHARDS
    assert int(parameter["MaxValue"]) == MAX_SHARDS
    for name in ("processor", "api"):
        assert tpl.function_env(name, template=template)["IMGPIPE_LIST_SHARDS"] == {
            "Ref": "ListShards"
        }


# ------------------------------------------------------------------ IAM ----------------------

XRAY = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}


def _dynamodb_calls() -> set[str]:
    """The IAM action of each DynamoDB operation processor/aws/dynamo.py calls."""
    text = (ROOT / "processor" / "aws" / "dynamo.py").read_text(encoding="utf-8")
    methods = set(re.findall(r"_client\.(\w+)\(", text)) - {"get_paginator", "get_waiter"}
    return {"dynamodb:" + "".join(p.title() for p in m.split("_")) for m in methods}


def test_processor_role_touches_only_its_prefixes_table_and_queue(
    template: dict[str, Any],
) -> None:
    assert tpl.references(props(template, "ProcessorFunction")["Role"]) == {"ProcessorRole"}
    table_actions = {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",  # by_sha256 keeps keys only
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",  # a record begun for an in-place original gone before its read
        "dynamodb:Query",
    }
    # Exactly what the DynamoDB adapter calls: no write the code never makes.
    assert table_actions == _dynamodb_calls()
    expected = {
        ("logs:CreateLogStream", "LOGS:processor"),
        ("logs:PutLogEvents", "LOGS:processor"),
        *XRAY,
        ("s3:GetObject", f"{BUCKET_ARN}/raw/*"),
        ("s3:GetObject", f"{BUCKET_ARN}/public/*"),
        ("s3:PutObject", f"{BUCKET_ARN}/public/*"),
        ("s3:DeleteObject", f"{BUCKET_ARN}/public/*"),
        ("s3:ListBucket", BUCKET_ARN),  # a missing key answers 404, not 403
        # Deleted means gone: a deleted image's versions are found and erased, its CDN
        # paths recorded on the invalidations queue (the flusher, not this role, invalidates).
        ("s3:ListBucketVersions", BUCKET_ARN),
        ("s3:DeleteObjectVersion", f"{BUCKET_ARN}/raw/*"),
        ("s3:DeleteObjectVersion", f"{BUCKET_ARN}/public/*"),
        ("sqs:SendMessage", "INVALIDATIONS"),
        *{(a, r) for a in table_actions for r in (TABLE_ARN, f"{TABLE_ARN}/index/*")},
        ("sqs:ReceiveMessage", "QUEUE"),
        ("sqs:DeleteMessage", "QUEUE"),
        ("sqs:ChangeMessageVisibility", "QUEUE"),
        ("sqs:GetQueueAttributes", "QUEUE"),
        # A try starved of CPU comes back later; S3 Batch Operations queues backfill objects.
        ("sqs:SendMessage", "QUEUE"),
        # Completion events, to the stack's bus unless EventBusName names another.
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/imgpipe-images"),
    }
    assert grants(template, "ProcessorRole") == expected
    # Originals read in place: exactly the object ARN patterns BackfillSources names, and
    # nothing when it names none.
    sources = "arn:aws:s3:::photos/archive/*,arn:aws:s3:::legacy-bucket/*"
    more = grants(template, "ProcessorRole", {"BackfillSources": sources}) - expected
    assert more == {
        ("s3:GetObject", "arn:aws:s3:::photos/archive/*"),
        ("s3:GetObject", "arn:aws:s3:::legacy-bucket/*"),
    }
    named = grants(template, "ProcessorRole", {"EventBusName": "integrations"}) - expected
    assert named == {
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/integrations")
    }


def test_the_flusher_alone_invalidates_fed_windows_of_the_invalidations_queue(
    template: dict[str, Any],
) -> None:
    """Deleted images' CDN paths: the processor records them, the flusher invalidates them
    (docs/capacity.md "Deletes and the CDN")."""
    from processor.rules.invalidations import MAX_WILDCARDS_PER_FLUSH

    source = tpl.event_source(template, "flush")
    assert source["EventSource"] == "InvalidationQueue"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A whole window per batch: over 10 messages needs a window; SQS allows 10,000 with one.
    assert 10 < int(source["BatchSize"]) <= 10_000
    window = template["Parameters"]["InvalidationWindowSeconds"]
    assert props(template, "FlushEventSource")["MaximumBatchingWindowInSeconds"] == {
        "Ref": "InvalidationWindowSeconds"
    }
    assert 1 <= int(window["MinValue"]) and int(window["MaxValue"]) <= 300
    # Flushes at once, plus one still in progress, stay within CloudFront's 15 wildcards.
    concurrency = int(source["ScalingConfig"]["MaximumConcurrency"])
    assert concurrency == 2
    assert (concurrency + 1) * MAX_WILDCARDS_PER_FLUSH <= 15
    # Not received again while a window and its invocation may still hold it; refused
    # batches come back for hours before the dead-letter queue (and its alarm).
    queue = tpl.queue_settings(template, "InvalidationQueue")
    timeout = tpl.function_spec("flush", template=template).timeout
    assert queue.visibility_timeout >= int(window["MaxValue"]) + timeout
    assert queue.max_receive_count * queue.visibility_timeout >= 3 * 3600
    assert queue.dlq_message_retention > queue.message_retention
    for name in ("InvalidationQueue", "InvalidationDeadLetterQueue"):
        assert props(template, name)["SqsManagedSseEnabled"] is True
    # Least privilege: the flusher consumes its queue and invalidates the one distribution;
    # no other role may invalidate, and the processor may only send the paths.
    assert tpl.references(props(template, "FlushFunction")["Role"]) == {"FlushRole"}
    distribution = "arn:aws:cloudfront::123456789012:distribution/DISTRIBUTION"
    assert grants(template, "FlushRole") == {
        ("logs:CreateLogStream", "LOGS:flush"),
        ("logs:PutLogEvents", "LOGS:flush"),
        ("cloudfront:CreateInvalidation", distribution),
        *{
            (a, "INVALIDATIONS")
            for a in (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            )
        },
    }
    invalidators = {
        role
        for role in tpl.resources(template, "AWS::IAM::Role")
        if any(a == "cloudfront:CreateInvalidation" for a, _ in grants(template, role))
    }
    assert invalidators == {"FlushRole"}
    senders = {
        role
        for role in tpl.resources(template, "AWS::IAM::Role")
        if ("sqs:SendMessage", "INVALIDATIONS") in grants(template, role)
    }
    assert senders == {"ProcessorRole"}
    env = tpl.function_env("flush", template=template)
    assert env["IMGPIPE_DISTRIBUTION_ID"] == {"Ref": "Distribution"}
    processor = tpl.function_env("processor", template=template)
    assert processor["IMGPIPE_INVALIDATION_QUEUE_URL"] == {"Ref": "InvalidationQueue"}
    assert "IMGPIPE_DISTRIBUTION_ID" not in processor


def test_batch_operations_role_reads_manifests_writes_reports_and_invokes_the_processor(
    template: dict[str, Any],
) -> None:
    assert grants(template, "BatchOperationsRole") == {
        ("s3:GetObject", f"{BUCKET_ARN}/backfill/manifests/*"),
        ("s3:GetObjectVersion", f"{BUCKET_ARN}/backfill/manifests/*"),
        ("s3:PutObject", f"{BUCKET_ARN}/backfill/reports/*"),
        (
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-processor",
        ),
    }
    (statement,) = props(template, "BatchOperationsRole")["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "batchoperations.s3.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_api_role_presigns_raw_deletes_images_reads_records_and_sends_reprocess(
    template: dict[str, Any],
) -> None:
    assert tpl.references(props(template, "ApiFunction")["Role"]) == {"ApiRole"}
    expected = {
        ("logs:CreateLogStream", "LOGS:api"),
        ("logs:PutLogEvents", "LOGS:api"),
        *XRAY,
        ("s3:PutObject", f"{BUCKET_ARN}/raw/*"),
        ("s3:AbortMultipartUpload", f"{BUCKET_ARN}/raw/*"),
        ("s3:ListMultipartUploadParts", f"{BUCKET_ARN}/raw/*"),
        ("s3:DeleteObject", f"{BUCKET_ARN}/raw/*"),
        ("s3:DeleteObject", f"{BUCKET_ARN}/public/*"),
        ("s3:ListBucket", BUCKET_ARN),
        *{
            (a, r)
            for a in ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
            for r in (TABLE_ARN, f"{TABLE_ARN}/index/*")
        },
        ("sqs:SendMessage", "QUEUE"),
    }
    assert grants(template, "ApiRole") == expected
    # Its listing is confined to the renditions' prefix.
    (listing,) = [
        s
        for p in props(template, "ApiRole")["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"] == "s3:ListBucket"
    ]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "public/*"}}


def test_only_xray_has_a_wildcard_resource_and_no_action_is_a_wildcard(
    template: dict[str, Any],
) -> None:
    for role in tpl.resources(template, "AWS::IAM::Role"):
        for action, resource in grants(template, role):
            assert "*" not in action, (role, action)
            if resource == "*":
                assert action.startswith("xray:"), (role, action)
            assert not resource.startswith("DLQ"), f"{role} may not touch the dead-letter queue"


def test_functions_assume_roles_only_as_lambda(template: dict[str, Any]) -> None:
    for role in set(tpl.resources(template, "AWS::IAM::Role")) - {"BatchOperationsRole"}:
        (statement,) = props(template, role)["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}


# ------------------------------------------------------------------ functions ----------------


@pytest.mark.parametrize(
    ("name", "parameter"), [("processor", "ProcessorImageUri"), ("api", "ApiImageUri")]
)
def test_functions_run_their_image_on_the_chosen_architecture(
    template: dict[str, Any], name: str, parameter: str
) -> None:
    function = props(template, tpl.FUNCTIONS[name])
    assert function["PackageType"] == "Image"
    assert function["Code"] == {"ImageUri": {"Ref": parameter}}
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    assert template["Parameters"]["Architecture"]["AllowedValues"] == ["arm64", "x86_64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    handler = {"processor": "processor.entrypoints.handler", "api": "api.handler"}[name]
    assert tpl.function_spec(name, template=template).handler == f"{handler}.lambda_handler"


def test_processor_environment(template: dict[str, Any]) -> None:
    env = tpl.function_env("processor", FAKE_REFS, template)
    assert env == {
        "IMGPIPE_BUCKET": FAKE_REFS["Bucket"],
        "IMGPIPE_TABLE": FAKE_REFS["Table"],
        "IMGPIPE_LIST_SHARDS": "32",
        "IMGPIPE_QUEUE_URL": FAKE_REFS["Queue"],
        "IMGPIPE_DLQ_URL": FAKE_REFS["DeadLetterQueue"],
        "IMGPIPE_RAW_PREFIX": "raw/",
        "IMGPIPE_PUBLIC_PREFIX": "public/",
        "IMGPIPE_MAX_INPUT_BYTES": "209715200",
        "IMGPIPE_INVALIDATION_QUEUE_URL": FAKE_REFS["InvalidationQueue"],
        "IMGPIPE_EVENT_BUS": FAKE_REFS["EventBus"],
        "IMGPIPE_CDN_BASE_URL": "https://d111111abcdef8.cloudfront.net",
        "IMGPIPE_BACKFILL_SOURCES": "",
        "MALLOC_ARENA_MAX": "2",
        "POWERTOOLS_SERVICE_NAME": "processor",
        "POWERTOOLS_METRICS_NAMESPACE": f"imgpipe/{FAKE_REFS['AWS::StackName']}",
        "LOG_LEVEL": "INFO",
    }
    assert tpl.function_spec("processor", template=template).memory == 2048


def test_api_environment(template: dict[str, Any]) -> None:
    raw = tpl.function_env("api", template=template)
    env = tpl.function_env("api", FAKE_REFS, template)
    assert env["IMGPIPE_CDN_BASE_URL"] == "https://d111111abcdef8.cloudfront.net"
    assert env["IMGPIPE_AUTH_MODE"] == "gateway"
    # The API presigns at most what the processor accepts.
    assert (
        env["IMGPIPE_MAX_UPLOAD_BYTES"]
        == tpl.function_env("processor", FAKE_REFS, template)["IMGPIPE_MAX_INPUT_BYTES"]
    )
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == f"imgpipe/{FAKE_REFS['AWS::StackName']}"
    # Readers and writers must agree on the shards, or a listing misses what was written.
    shared = ("IMGPIPE_BUCKET", "IMGPIPE_TABLE", "IMGPIPE_LIST_SHARDS", "IMGPIPE_QUEUE_URL")
    for key in (*shared, "IMGPIPE_PUBLIC_PREFIX"):
        assert env[key] == tpl.function_env("processor", FAKE_REFS, template)[key]
    # The cursor key comes from Secrets Manager at deploy time, never from the template text.
    assert "resolve:secretsmanager" in raw["IMGPIPE_CURSOR_SECRET"]["Fn::Sub"]
    assert "IMGPIPE_CURSOR_SECRET" not in env


# ------------------------------------------------------------------ HTTP API -----------------


def _routes(template: dict[str, Any], api: str) -> dict[str, dict[str, Any]]:
    """One HTTP API's routes by route key."""
    return {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in tpl.resources(template, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == {"Ref": api}
    }


def test_only_reads_are_open_and_writes_need_the_api_key(template: dict[str, Any]) -> None:
    routes = _routes(template, "HttpApi")
    for key in (
        "POST /uploads",
        "POST /uploads/{proxy+}",
        "DELETE /images/{id}",
        "POST /images/{id}/reprocess",
        "$default",  # every other method and path, including routes added to the app later
    ):
        assert routes[key]["AuthorizationType"] == "CUSTOM", key
        assert routes[key]["AuthorizerId"] == {"Ref": "ApiKeyAuthorizer"}, key
    # Reads pass the read authoriser, which tells the API whether the key came along (and
    # refuses readers without it when ReadsPublic is false).
    reads = {k: r for k, r in routes.items() if k.startswith("GET ")}
    assert reads and all(r["AuthorizerId"] == {"Ref": "ReadAuthorizer"} for r in reads.values())
    open_routes = {k for k, r in routes.items() if r["AuthorizationType"] == "NONE"}
    # Only the browser's CORS preflight is open (it never carries the key).
    assert open_routes and all(k.startswith("OPTIONS ") for k in open_routes)
    assert {r["AuthorizationType"] for r in routes.values()} == {"NONE", "CUSTOM"}
    stage = props(template, "ApiStage")
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRate"}
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurst"}
    # Writes have their own, lower limits, on every write route.
    writes = {"POST /uploads", "POST /uploads/{proxy+}", "DELETE /images/{id}"}
    writes |= {"POST /images/{id}/reprocess", "$default"}
    assert set(stage["RouteSettings"]) == writes
    for settings in stage["RouteSettings"].values():
        assert settings["ThrottlingRateLimit"] == {"Ref": "ApiWriteThrottleRate"}
        assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiWriteThrottleBurst"}
    defaults = tpl.parameter_defaults(template)
    assert int(defaults["ApiWriteThrottleRate"]) < int(defaults["ApiThrottleRate"])
    assert int(defaults["ApiWriteThrottleBurst"]) < int(defaults["ApiThrottleBurst"])
    assert set(stage_depends := template["Resources"]["ApiStage"]["DependsOn"]) >= {
        "UploadRoute",
        "DefaultRoute",
    }, stage_depends
    assert "AccessLogSettings" in stage
    # The API trusts the gateway's decision rather than checking the key a second time.
    assert tpl.function_env("api", template=template)["IMGPIPE_AUTH_MODE"] == "gateway"


def test_signed_in_users_get_a_second_api_whose_every_request_needs_a_jwt(
    template: dict[str, Any],
) -> None:
    browser = {k: r for k, r in template["Resources"].items() if r.get("Condition") == "HasJwt"}
    # All of it exists only when JwtIssuer is set: a key-only deployment gains nothing.
    assert {"BrowserApi", "JwtAuthorizer", "BrowserStage", "BrowserInvokePermission"} <= set(
        browser
    )
    assert template["Conditions"]["HasJwt"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]
    }
    jwt = props(template, "JwtAuthorizer")
    assert jwt["AuthorizerType"] == "JWT"
    assert jwt["IdentitySource"] == ["$request.header.Authorization"]
    assert jwt["JwtConfiguration"] == {
        "Issuer": {"Ref": "JwtIssuer"},
        "Audience": {"Ref": "JwtAudience"},
    }
    # An issuer without an audience would let any of that issuer's tokens in: refused.
    assert "JwtNeedsAudience" in template["Rules"]
    routes = _routes(template, "BrowserApi")
    assert set(routes) == {"OPTIONS /{proxy+}", "GET /{proxy+}", "$default"}
    for key, route in routes.items():
        expected = "NONE" if key.startswith("OPTIONS ") else "JWT"
        assert route["AuthorizationType"] == expected, key
        if expected == "JWT":
            assert route["AuthorizerId"] == {"Ref": "JwtAuthorizer"}, key
    # Same function, its own invoke permission, scoped to this API.
    assert props(template, "BrowserIntegration")["IntegrationUri"] == {
        "Fn::GetAtt": ["ApiFunction", "Arn"]
    }
    source = props(template, "BrowserInvokePermission")["SourceArn"]["Fn::Sub"]
    assert source.endswith("${BrowserApi}/*")
    stage = props(template, "BrowserStage")
    assert stage["RouteSettings"]["$default"]["ThrottlingRateLimit"] == {
        "Ref": "ApiWriteThrottleRate"
    }
    assert "AccessLogSettings" in stage
    assert template["Outputs"]["BrowserApiUrl"]["Condition"] == "HasJwt"
    # The API knows which scope makes a token an admin.
    raw = props(template, "ApiFunction")["Environment"]["Variables"]
    assert raw["IMGPIPE_ADMIN_SCOPE"] == {"Ref": "JwtAdminScope"}


def test_authoriser_checks_the_x_api_key_header_with_its_function(
    template: dict[str, Any],
) -> None:
    authorizer = props(template, "ApiKeyAuthorizer")
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["$request.header.x-api-key"]
    assert authorizer["AuthorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["EnableSimpleResponses"] is True
    assert tpl.references(authorizer["AuthorizerUri"]) == {"AuthorizerFunction"}
    permission = props(template, "AuthorizerInvokePermission")
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert tpl.references(permission["SourceArn"]) == {"HttpApi"}  # its authorisers only
    function = props(template, "AuthorizerFunction")
    assert function["Environment"]["Variables"] == {
        "IMGPIPE_API_KEY_SECRET_ARN": {"Ref": "ApiKeySecret"},
        "IMGPIPE_KEY_TTL_SECONDS": {"Ref": "ApiKeyTtlSeconds"},
        "IMGPIPE_READS_PUBLIC": {"Ref": "ReadsPublic"},
    }
    # The API and the authoriser agree on whether reads are public.
    assert tpl.function_env("api", template=template)["IMGPIPE_READS_PUBLIC"] == {
        "Ref": "ReadsPublic"
    }
    read = props(template, "ReadAuthorizer")
    assert "IdentitySource" not in read and read["AuthorizerResultTtlInSeconds"] == 0
    assert tpl.references(read["AuthorizerUri"]) == {"AuthorizerFunction"}


@pytest.mark.parametrize(
    ("function", "parameter", "condition"),
    [
        ("ApiFunction", "ApiReservedConcurrency", "HasApiReservedConcurrency"),
        ("AuthorizerFunction", "AuthorizerReservedConcurrency", "HasAuthorizerReservedConcurrency"),
    ],
)
def test_reserved_concurrency_of_the_api_and_authoriser_is_a_parameter(
    template: dict[str, Any], function: str, parameter: str, condition: str
) -> None:
    reserved = props(template, function)["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]}
    assert tpl.parameter_defaults(template)[parameter] == "0"  # new accounts cannot reserve
    assert "ApiKeySecretArn" in template["Outputs"]


def test_authoriser_role_reads_only_the_api_key(template: dict[str, Any]) -> None:
    assert tpl.references(props(template, "AuthorizerFunction")["Role"]) == {"AuthorizerRole"}
    assert grants(template, "AuthorizerRole") == {
        ("logs:CreateLogStream", "LOGS:authorizer"),
        ("logs:PutLogEvents", "LOGS:authorizer"),
        ("secretsmanager:GetSecretValue", "SECRET:api-key"),
    }


# ------------------------------------------------------------------ bucket and CDN -----------


def test_bucket_is_private_encrypted_tls_only_and_cleans_up_multipart(
    template: dict[str, Any],
) -> None:
    bucket = props(template, "Bucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)
    statements = props(template, "BucketPolicy")["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_cloudfront_reads_only_the_public_prefix_through_oac(template: dict[str, Any]) -> None:
    config = props(template, "Distribution")["DistributionConfig"]
    (origin,) = [o for o in config["Origins"] if "S3OriginConfig" in o]
    assert origin["OriginPath"] == "/public"
    assert tpl.references(origin["OriginAccessControlId"]) == {"OriginAccessControl"}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "https-only"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert tpl.references(behaviour["CachePolicyId"]) == {"CachePolicy"}
    assert tpl.references(behaviour["ResponseHeadersPolicyId"]) == {"ResponseHeadersPolicy"}
    headers = props(template, "ResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert {"ContentTypeOptions", "FrameOptions", "ReferrerPolicy"} <= set(security)
    assert (
        props(template, "OriginAccessControl")["OriginAccessControlConfig"]["SigningBehavior"]
        == "always"
    )
    statements = props(template, "BucketPolicy")["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert tpl.resolve(allow["Resource"], SYMBOLS, template) == f"{BUCKET_ARN}/public/*"
    source = tpl.resolve(allow["Condition"]["StringEquals"]["AWS:SourceArn"], SYMBOLS, template)
    assert source.endswith(":distribution/DISTRIBUTION")


# ------------------------------------------------------------------ alarms and dashboard -----


def _namespace(value: Any) -> str:
    """A namespace as written: the stack's own is a !Sub (imgpipe/${AWS::StackName})."""
    return str(value["Fn::Sub"]) if isinstance(value, dict) else str(value)


def _alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str]]:
    p = alarm["Properties"]
    if "MetricName" in p:
        return [(_namespace(p["Namespace"]), p["MetricName"])]
    found = []
    for query in p["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found.append((_namespace(metric["Namespace"]), metric["MetricName"]))
        elif isinstance(query.get("Expression"), dict):  # !Sub: the stack's own namespace
            found.append(("insights", query["Expression"]["Fn::Sub"]))
    return found


def test_alarms_cover_the_issue_and_notify_the_topic(template: dict[str, Any]) -> None:
    alarms = tpl.resources(template, "AWS::CloudWatch::Alarm")
    covered = {m for a in alarms.values() for m in _alarm_metrics(a)}
    assert ("AWS/Lambda", "Errors") in covered
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in covered  # dead letters
    assert ("AWS/ApiGateway", "5xx") in covered
    assert ("AWS/Lambda", "Throttles") in covered
    assert ("AWS/Lambda", "Duration") in covered
    assert any(
        ns == "insights" and "ImagesFailed" in q and "imgpipe/${AWS::StackName}" in q
        for ns, q in covered
    )
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}], logical_id
    subscription = props(template, "AlertSubscription")
    assert subscription["Protocol"] == "email"
    assert subscription["Endpoint"] == {"Ref": "AlertEmail"}


def test_each_dead_letter_queue_has_its_alarm(template: dict[str, Any]) -> None:
    watched = [
        a["Properties"]["Dimensions"]
        for a in tpl.resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert sorted(watched, key=str) == [
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        for queue in ("DeadLetterQueue", "InvalidationDeadLetterQueue")
    ]


def test_duration_alarm_fires_before_the_timeout(template: dict[str, Any]) -> None:
    timeout_ms = tpl.function_spec("processor", template=template).timeout * 1000
    alarm = props(template, "ProcessorDurationAlarm")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ProcessorFunction"}}]
    assert 0.5 * timeout_ms <= alarm["Threshold"] < timeout_ms


def test_dashboard_shows_the_pipeline_metrics(template: dict[str, Any]) -> None:
    refs = {
        **FAKE_REFS,
        "ProcessorFunction": "imgpipe-processor",
        "ApiFunction": "imgpipe-api",
        "AuthorizerFunction": "imgpipe-authorizer",
        "HttpApi": "abc123",
        "Queue.QueueName": "imgpipe-Queue-X",
        "DeadLetterQueue.QueueName": "imgpipe-DeadLetterQueue-X",
    }
    body = json.loads(tpl.resolve(props(template, "Dashboard")["DashboardBody"], refs, template))
    text = json.dumps(body)
    for metric in ("ImagesDone", "ImagesFailed", "ProcessingTime", "InputBytes", "OutputBytes"):
        assert f'MetricName=\\"{metric}\\"' in text, metric
    assert "ApproximateAgeOfOldestMessage" in text
    assert "imgpipe-DeadLetterQueue-X" in text
    assert len(body["widgets"]) >= 5


def test_every_http_api_has_a_5xx_alarm_and_dashboard_series(template: dict[str, Any]) -> None:
    apis = tpl.resources(template, "AWS::ApiGatewayV2::Api")
    assert set(apis) == {"HttpApi", "BrowserApi"}
    alarms = tpl.resources(template, "AWS::CloudWatch::Alarm").values()
    for logical_id, api in apis.items():
        (alarm,) = [
            a
            for a in alarms
            if a["Properties"].get("MetricName") == "5xx"
            and {"Name": "ApiId", "Value": {"Ref": logical_id}} in a["Properties"]["Dimensions"]
        ]
        # Present exactly when the API is (the browser API only with a JwtIssuer).
        assert alarm.get("Condition") == api.get("Condition"), logical_id
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}]
    refs = {
        **FAKE_REFS,
        "ProcessorFunction": "imgpipe-processor",
        "ApiFunction": "imgpipe-api",
        "AuthorizerFunction": "imgpipe-authorizer",
        "HttpApi": "abc123",
        "BrowserApi": "jwt456",
        "Queue.QueueName": "imgpipe-Queue-X",
        "DeadLetterQueue.QueueName": "imgpipe-DeadLetterQueue-X",
    }
    dashboard = props(template, "Dashboard")["DashboardBody"]
    with_jwt = tpl.resolve(dashboard, {**refs, "JwtIssuer": "https://issuer.example"}, template)
    assert '"5xx","ApiId","jwt456"' in with_jwt
    assert "jwt456" not in tpl.resolve(dashboard, refs, template)


# ------------------------------------------------------------------ outputs and size ---------


def test_outputs(template: dict[str, Any]) -> None:
    assert {
        "ApiUrl",
        "CdnDomain",
        "BucketName",
        "TableName",
        "TopicArn",
        "QueueUrl",
        "DeadLetterQueueUrl",
    } <= set(template["Outputs"])


def test_template_fits_a_create_stack_call() -> None:
    from infra.deploy.artifacts import MAX_TEMPLATE_URL_BYTES

    # What deploy sends is the compact JSON form: inline up to 51,200 bytes, else uploaded to
    # the deploy's bucket and passed as TemplateURL, which takes 1 MB (tests/infra/
    # test_deploy_moto.py runs both paths).
    body = tpl.compact_body()
    assert len(body.encode()) <= MAX_TEMPLATE_URL_BYTES * 0.5
    # The same template: JSON of the long-form intrinsics parses back to what the YAML says,
    # less the scanners' suppressions (CloudFormation ignores them).
    expected = copy.deepcopy(tpl.load_template())
    for res in expected["Resources"].values():
        for scanner in tpl.SCANNER_METADATA:
            res.get("Metadata", {}).pop(scanner, None)
        if res.get("Metadata") == {}:
            del res["Metadata"]
    sent = json.loads(body)
    assert sent == expected
    assert "checkov" not in body
    # Only the scanners' metadata goes: the console's parameter groups stay.
    assert sent["Metadata"] == tpl.load_template()["Metadata"]
