"""Completion events through EventBridge on the embedded AWS: a rule on the bus sends
everything from imgpipe to a queue, as an integrator would subscribe (docs/events.md).

GIVEN uploads, a backfilled original read in place and a file that is not an image, WHEN they
are processed and deleted, THEN each final state is one event of the documented shape; and a
publication that fails after the state was saved is published by the message's retry, once.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from processor.core.changes import DETAIL_TYPES, ImageChanged
from processor.core.keys import image_id
from processor.core.messages import backfill_message, forget_message
from processor.entrypoints import bootstrap
from processor.entrypoints.handler import lambda_handler
from tests.cli import backfill_world
from tests.cli.backfill_world import CDN, World, tiny_image
from tests.lambda_runtime import FakeLambdaContext, drain
from tests.processor.aws.faults import CONNECTION_DROPPED, FailFirst, inject

# The fixtures (a module's embedded AWS, a pipeline on it per test).
shared_endpoint = backfill_world.shared_endpoint
world = backfill_world.world

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("backfill")]


def notify_raw_uploads(world: World) -> None:
    arn = world.sqs.get_queue_attributes(QueueUrl=world.queue_url, AttributeNames=["QueueArn"])
    world.s3.put_bucket_notification_configuration(
        Bucket=world.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}},
                }
            ]
        },
    )


def send(world: World, body: str) -> None:
    world.sqs.send_message(QueueUrl=world.queue_url, MessageBody=body)


def test_every_final_state_is_one_event_of_the_documented_shape(world: World) -> None:
    notify_raw_uploads(world)
    upload, legacy, junk = "raw/u/cat.png", "legacy/dog.jpg", "legacy/notes.txt"
    world.put(world.bucket, upload, tiny_image(1))
    world.put(world.bucket, legacy, tiny_image(2, "JPEG"))
    world.put(world.bucket, junk, b"hello")
    for key in (legacy, junk):
        etag = world.s3.head_object(Bucket=world.bucket, Key=key)["ETag"]
        send(world, backfill_message(world.bucket, key, etag=etag))
    drain(world.sqs, world.queue_url, lambda_handler)
    # WHEN the upload is deleted (S3's event) and the in-place image forgotten (the API's way)
    world.s3.delete_object(Bucket=world.bucket, Key=upload)
    send(world, forget_message(world.bucket, legacy))
    drain(world.sqs, world.queue_url, lambda_handler)

    events = world.events()
    # THEN one event per state change: done, done, failed, then deleted twice
    seen = Counter((e["detail"]["id"], e["detail-type"]) for e in events)
    ids = {k: image_id(world.bucket, k) for k in (upload, legacy, junk)}
    assert seen == {
        (ids[upload], "Image Processed"): 1,
        (ids[legacy], "Image Processed"): 1,
        (ids[junk], "Image Failed"): 1,
        (ids[upload], "Image Deleted"): 1,
        (ids[legacy], "Image Deleted"): 1,
    }
    for event in events:
        assert event["source"] == "imgpipe"
        assert event["detail-type"] in DETAIL_TYPES.values()
        detail = ImageChanged.model_validate(event["detail"])  # the documented schema
        assert set(event["detail"]) == set(ImageChanged.model_fields)
        assert detail.event_id == f"{detail.id}-{detail.version}"
    by_type = {(e["detail"]["id"], e["detail-type"]): e["detail"] for e in events}
    done = by_type[(ids[legacy], "Image Processed")]
    # ... the image as the API shows a writer: its key, renditions on the CDN, a version
    assert done["status"] == "done" and done["source_key"] == legacy
    assert done["renditions"] and all(r["url"].startswith(CDN) for r in done["renditions"])
    assert by_type[(ids[legacy], "Image Deleted")]["version"] == done["version"] + 1
    failed = by_type[(ids[junk], "Image Failed")]
    assert failed["error"]["code"] == "unsupported_format"
    # ... and the original read in place is still there after its image was deleted
    assert world.s3.head_object(Bucket=world.bucket, Key=legacy)["ContentLength"] > 0
    # ... with no event left pending on any record
    assert not [i for i in world.records() if "pending_event" in i]


def test_a_crash_between_the_save_and_the_publication_publishes_once(world: World) -> None:
    key = "legacy/crash.png"
    world.put(world.bucket, key, tiny_image(9))
    container = bootstrap.get_container()
    assert container.service.events is not None
    # GIVEN EventBridge unreachable for every attempt of the first publication
    fault = inject(
        container.service.events._client,  # the adapter's client: its botocore hooks
        "before-send.events.PutEvents",
        FailFirst(3, CONNECTION_DROPPED),
    )
    send(world, backfill_message(world.bucket, key, etag=None))
    report = drain(world.sqs, world.queue_url, lambda_handler)
    # THEN the first delivery failed after the record was saved, and its retry published it
    assert fault.injected == 3 and report.failures == 1 and report.messages == 2
    events = world.events()
    assert [(e["detail-type"], e["detail"]["version"]) for e in events] == [("Image Processed", 1)]
    record = container.repo.get(image_id(world.bucket, key))
    assert record is not None and record.version == 1 and record.pending_event is None
    assert json.loads(json.dumps(events[0]["detail"]))["event_id"] == f"{record.id}-1"


def test_a_batch_operations_task_queues_the_object_or_says_why_not(world: World) -> None:
    """The processor invoked per object of an S3 Batch Operations job (schema 2.0)."""
    event = {
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv-1",
        "job": {"id": "job-1", "userArguments": {}},
        "tasks": [
            {
                "taskId": "t1",
                "s3Bucket": world.photos,
                "s3Key": "2019/%C3%BC+1.jpg",
                "s3VersionId": None,
            },
            {
                "taskId": "t2",
                "s3Bucket": "someone-else",
                "s3Key": "secret.jpg",
                "s3VersionId": None,
            },
        ],
    }
    response = lambda_handler(event, FakeLambdaContext())
    assert response["invocationId"] == "inv-1"
    results = {r["taskId"]: r["resultCode"] for r in response["results"]}
    assert results == {"t1": "Succeeded", "t2": "PermanentFailure"}
    (message,) = world.messages()
    body = json.loads(message["Body"])
    assert (body["type"], body["bucket"], body["key"]) == (
        "imgpipe.backfill",
        world.photos,
        "2019/ü 1.jpg",
    )
