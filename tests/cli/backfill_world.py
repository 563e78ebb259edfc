"""A pipeline on the embedded AWS for the backfill and event tests: the bucket, a second bucket
of existing photos, the table, the queue, the event bus with a rule to a tap queue (as an
integrator subscribes), and the processor's handler fed by a stand-in for the event source
mapping (tests/lambda_runtime.py). Tiny images are made at test time."""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from processor.core.keys import image_id
from processor.core.record import ImageRecord
from processor.entrypoints import bootstrap
from tests.aws import create_table
from tests.cli.conftest import FAKE_AWS, IMGPIPE, aws_client
from tests.conftest import ROOT

# One small rendition in one format: the tests count records and events, not pixels.
RENDITIONS = json.dumps(
    [{"name": "thumb", "folder": "thumbs", "width": 32, "height": 32, "formats": ["webp"]}]
)
CDN = "https://cdn.example"


def tiny_image(n: int, fmt: str = "PNG") -> bytes:
    """A distinct 8x8 image per ``n`` (its colour), a few hundred bytes."""
    out = io.BytesIO()
    colour = (n * 37 % 256, n * 91 % 256, n * 53 % 256)
    Image.new("RGB", (8, 8), colour).save(out, fmt)
    return out.getvalue()


@dataclass
class World:
    endpoint: str
    bucket: str
    photos: str  # a second bucket: existing images read in place
    table: str
    queue_url: str
    tap_url: str  # every completion event, through an EventBridge rule
    bus: str
    s3: Any
    sqs: Any
    dynamodb: Any

    @property
    def env(self) -> dict[str, str]:
        return {
            **FAKE_AWS,
            "IMGPIPE_BUCKET": self.bucket,
            "IMGPIPE_TABLE": self.table,
            "IMGPIPE_LIST_SHARDS": "1",
            "IMGPIPE_QUEUE_URL": self.queue_url,
            "IMGPIPE_ENDPOINT_URL": self.endpoint,
            "IMGPIPE_BACKFILL_SOURCES": f"{self.bucket}/legacy/,{self.photos}/",
            "IMGPIPE_RENDITIONS": RENDITIONS,
            "IMGPIPE_EVENT_BUS": self.bus,
            "IMGPIPE_CDN_BASE_URL": CDN,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def record(self, bucket: str, key: str) -> ImageRecord | None:
        return bootstrap.get_container().repo.get(image_id(bucket, key))

    def records(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
            items.extend(page["Items"])
        return items

    def messages(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every message in a queue (received once, then left to expire: tests only)."""
        found: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url or self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=300,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            if not got:
                return found
            found.extend(got)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.messages(self.tap_url)]

    def backfill(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(IMGPIPE), "backfill", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(IMGPIPE), "backfill", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture(scope="module")
def shared_endpoint() -> Iterator[str]:
    """One embedded AWS for a module's tests (each names its own resources)."""
    from cli.local.aws import EmbeddedAws

    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_AWS.items():
            mp.setenv(name, value)
        server = EmbeddedAws("127.0.0.1", 0)
        try:
            yield server.start()
        finally:
            server.stop()


@pytest.fixture
def world(shared_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    moto_endpoint = shared_endpoint
    suffix = uuid.uuid4().hex[:8]
    s3, sqs, dynamodb, events = (
        aws_client(n, moto_endpoint) for n in ("s3", "sqs", "dynamodb", "events")
    )
    bucket, photos, table = f"imgpipe-{suffix}", f"photos-{suffix}", f"images-{suffix}"
    for name in (bucket, photos):
        s3.create_bucket(Bucket=name)
    create_table(dynamodb, table)
    queue_url = sqs.create_queue(QueueName=f"process-{suffix}")["QueueUrl"]
    bus = f"images-{suffix}"
    events.create_event_bus(Name=bus)
    tap_url = sqs.create_queue(QueueName=f"tap-{suffix}")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])
    events.put_rule(
        Name="to-tap", EventBusName=bus, EventPattern=json.dumps({"source": ["imgpipe"]})
    )
    events.put_targets(
        Rule="to-tap",
        EventBusName=bus,
        Targets=[{"Id": "tap", "Arn": tap_arn["Attributes"]["QueueArn"]}],
    )
    found = World(moto_endpoint, bucket, photos, table, queue_url, tap_url, bus, s3, sqs, dynamodb)
    for name, value in found.env.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    yield found
    bootstrap.reset()
