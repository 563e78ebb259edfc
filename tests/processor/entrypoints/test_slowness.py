"""Slowness is not failure, through the handler: recorded SQS events of S3 uploads, moto
in-process for S3, DynamoDB and the processing queue, and the fake engine moving fake clocks
(a starved try gets a tenth of a CPU for its whole budget). Nothing here measures time.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from processor.core.events import parse_body
from processor.core.keys import image_id
from processor.core.messages import TRIES_ATTRIBUTE
from processor.core.record import ImageRecord, Status
from processor.entrypoints import bootstrap
from processor.entrypoints.handler import lambda_handler
from processor.entrypoints.settings import ProcessorSettings
from tests.aws import BUCKET, REGION, create_table
from tests.fakes.engine import FakeEngine
from tests.lambda_runtime import FakeLambdaContext, load_event, sqs_lambda_event

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff "


class WatchedEngine:
    """The fake engine, noting for each image how many others were in ``process`` beside it.

    Images in ``partnered`` wait (up to their guard, in seconds) for a second image to come
    in, so images that may overlap are seen overlapping; the others never wait.
    """

    def __init__(self) -> None:
        self.inner = FakeEngine()
        self.config = self.inner.config
        self.partnered: dict[str, float] = {}
        self.beside: dict[str, int] = {}
        self.started: list[str] = []
        self._inside: set[str] = set()
        self._changed = threading.Condition()

    def spool(self, source: Any) -> Any:
        return self.inner.spool(source)

    def process(self, source: Any, **kwargs: Any) -> Any:
        iid = kwargs["image_id"]
        with self._changed:
            self.started.append(iid)
            self._inside.add(iid)
            for other in self._inside:
                self.beside[other] = max(self.beside.get(other, 0), len(self._inside) - 1)
            self._changed.notify_all()
            if iid in self.partnered:
                self._changed.wait_for(lambda: len(self._inside) >= 2, self.partnered[iid])
        try:
            return self.inner.process(source, **kwargs)
        finally:
            with self._changed:
                self._inside.discard(iid)


@dataclass
class World:
    s3: Any
    sqs: Any
    queue_url: str
    engine: WatchedEngine
    container: bootstrap.Container

    def upload(self, key: str, body: bytes, **extra: Any) -> str:
        return str(self.s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)["ETag"])

    def rebuild(self) -> None:
        """A new container from the (changed) environment, around the same engine."""
        self.container = bootstrap.build(
            ProcessorSettings(),
            engine=self.engine,  # type: ignore[arg-type]
            clocks=self.engine.inner.clocks,
        )
        bootstrap.reset(self.container)

    def record(self, key: str) -> ImageRecord:
        found = self.container.repo.get(image_id(BUCKET, key))
        assert found is not None, key
        return found

    def sent(self) -> list[dict[str, Any]]:
        """What the processor put on its queue (the retries), received for the next batch."""
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(got.get("Messages", []))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("IMGPIPE_RETRY_DELAY_S", "0")  # SQS would hold it back a minute
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        create_table(boto3.client("dynamodb", region_name=REGION))
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="imgpipe-processing")["QueueUrl"]
        monkeypatch.setenv("IMGPIPE_QUEUE_URL", queue_url)
        engine = WatchedEngine()
        container = bootstrap.build(ProcessorSettings(), engine=engine, clocks=engine.inner.clocks)  # type: ignore[arg-type]
        bootstrap.reset(container)
        yield World(s3, sqs, queue_url, engine, container)
        bootstrap.reset()


def s3_message(key: str, etag: str, sequencer: str, n: int, received: int = 1) -> dict[str, Any]:
    """The recorded SQS record of an S3 upload, for this key, ETag and sequencer."""
    record = copy.deepcopy(load_event("sqs_s3_batch")["Records"][0])
    body = json.loads(record["body"])
    s3_object = body["Records"][0]["s3"]["object"]
    s3_object.update(key=quote_plus(key), eTag=etag.strip('"'), sequencer=sequencer)
    record["body"] = json.dumps(body)
    record["messageId"] = f"m{n}"
    record["attributes"]["ApproximateReceiveCount"] = str(received)
    return record


def test_a_starved_try_comes_back_through_the_queue_runs_alone_and_is_done(
    world, log_lines, capsys
):
    # GIVEN a phone photo whose first try is starved of CPU, uploaded with two ordinary ones
    phone_etag = world.upload("raw/phone.heic", b"STARVED ONCE")
    batch = [
        s3_message("raw/phone.heic", phone_etag, "0A", 0),
        s3_message("raw/a.jpg", world.upload("raw/a.jpg", JPEG + b"a"), "0B", 1),
        s3_message("raw/b.jpg", world.upload("raw/b.jpg", JPEG + b"b"), "0C", 2),
    ]

    # WHEN the batch is handled
    response = lambda_handler({"Records": batch}, FakeLambdaContext())

    # THEN no message fails: the starved one is not failed but waits, processing, try 1
    assert response == {"batchItemFailures": []}
    phone = world.record("raw/phone.heic")
    assert (phone.status, phone.tries, phone.error) == (Status.processing, 1, None)
    assert [world.record(k).tries for k in ("raw/a.jpg", "raw/b.jpg")] == [1, 1]
    lines = [line for line in log_lines() if line["message"].startswith("starved of CPU")]
    assert [(line["key"], line["try"], line["level"]) for line in lines] == [
        ("raw/phone.heic", 1, "WARNING")
    ]
    # a tenth of a CPU over its 30 s budget, as the fake engine moved the clocks (the images
    # beside it move them a little too: they share the process clock)
    assert lines[0]["cpu_s"] == pytest.approx(3.0, abs=0.2)
    assert lines[0]["wall_s"] == pytest.approx(30.0, abs=0.2)
    assert '"ImagesRetried"' in capsys.readouterr().out
    # ... and its retry is on the queue, marked, carrying the event and its try
    (retry,) = world.sent()
    assert retry["MessageAttributes"][TRIES_ATTRIBUTE]["StringValue"] == "1"
    (event,) = parse_body(retry["Body"])
    assert (event.key, event.tries, event.etag) == ("raw/phone.heic", 1, phone_etag.strip('"'))

    # WHEN it arrives in a batch between two new uploads that may overlap
    phone_id = image_id(BUCKET, "raw/phone.heic")
    c_id, d_id = image_id(BUCKET, "raw/c.jpg"), image_id(BUCKET, "raw/d.jpg")
    # c and d wait for each other; the retry waits a little for anyone who would run beside it
    world.engine.partnered = {c_id: 30.0, d_id: 30.0, phone_id: 3.0}
    world.engine.beside.clear()  # the first try ran beside a.jpg and b.jpg
    first = s3_message("raw/c.jpg", world.upload("raw/c.jpg", JPEG + b"c"), "0D", 0)
    last = s3_message("raw/d.jpg", world.upload("raw/d.jpg", JPEG + b"d"), "0E", 2)
    (middle,) = sqs_lambda_event([retry], "arn:aws:sqs:us-east-1:123456789012:q")["Records"]
    response = lambda_handler({"Records": [first, middle, last]}, FakeLambdaContext())

    # THEN it runs first, with nothing beside it, while the other two still overlap; and it
    # is done, the record saying it took two tries
    assert response == {"batchItemFailures": []}
    assert world.engine.started[-3] == phone_id
    assert world.engine.beside[phone_id] == 0
    assert world.engine.beside[c_id] == world.engine.beside[d_id] == 1
    phone = world.record("raw/phone.heic")
    assert (phone.status, phone.tries) == (Status.done, 2)
    # ... and retried no more: once the mapping deletes the retry, the queue is empty
    world.sqs.delete_message(QueueUrl=world.queue_url, ReceiptHandle=retry["ReceiptHandle"])
    assert world.sent() == []


class InvocationKilled(BaseException):
    """Lambda stopping the invocation mid-image: nothing after it runs in this invocation."""


def stop_invocation() -> None:
    raise InvocationKilled


def test_every_upload_of_a_batch_has_its_record_before_any_image_starts(world):
    keys = [f"raw/{n}.jpg" for n in range(4)]
    batch = [
        s3_message(k, world.upload(k, JPEG + k.encode()), f"0{n}", n) for n, k in enumerate(keys)
    ]
    seen: list[list[tuple[str, int | None] | None]] = []

    def look() -> None:
        if not seen:
            records = [world.container.repo.get(image_id(BUCKET, k)) for k in keys]
            seen.append([(r.status.value, r.tries) if r else None for r in records])

    world.engine.inner.before_process = look

    assert lambda_handler({"Records": batch}, FakeLambdaContext()) == {"batchItemFailures": []}
    # what the first image to start found: its own try counted, the others seen, not tried
    # (the second may have started beside it)
    first, _, *waiting = seen[0]
    assert first == ("processing", 1)
    assert waiting == [("processing", None)] * 2
    assert all(world.record(k).status is Status.done for k in keys)


def test_a_message_put_off_for_time_has_its_record_and_no_try(world):
    batch = [
        s3_message(k, world.upload(k, JPEG + k.encode()), f"0{n}", n)
        for n, k in enumerate(["raw/first.jpg", "raw/second.jpg"])
    ]
    # 35 s left: the first image starts with 25, the second cannot have its 30 + 10
    response = lambda_handler({"Records": batch}, FakeLambdaContext(timeout_ms=35_000))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    second = world.record("raw/second.jpg")
    assert (second.status, second.tries) == (Status.processing, None)
    # it comes back, alone, and takes one try
    batch[1]["attributes"]["ApproximateReceiveCount"] = "2"
    assert lambda_handler({"Records": batch[1:]}, FakeLambdaContext()) == {"batchItemFailures": []}
    assert (world.record("raw/second.jpg").status, world.record("raw/second.jpg").tries) == (
        Status.done,
        1,
    )


def test_an_invocation_stopped_mid_batch_leaves_records_the_next_delivery_takes_up(
    world, monkeypatch
):
    # GIVEN a batch whose invocation is stopped (its timeout) while its first image works
    batch = [
        s3_message(k, world.upload(k, JPEG + k.encode()), f"0{n}", n)
        for n, k in enumerate(["raw/stopped.jpg", "raw/waiting.jpg"])
    ]
    monkeypatch.setenv("IMGPIPE_IMAGES_AT_ONCE", "1")  # one at a time: the second waits
    world.rebuild()
    world.engine.inner.before_process = stop_invocation
    with pytest.raises(InvocationKilled):
        lambda_handler({"Records": batch}, FakeLambdaContext())
    # THEN both have a record: the one stopped with its try counted, the other seen
    stopped, waiting = world.record("raw/stopped.jpg"), world.record("raw/waiting.jpg")
    assert (stopped.status, stopped.tries) == (Status.processing, 1)
    assert (waiting.status, waiting.tries) == (Status.processing, None)

    # WHEN SQS delivers both again after the visibility timeout
    world.engine.inner.before_process = None
    for message in batch:
        message["attributes"]["ApproximateReceiveCount"] = "2"
    assert lambda_handler({"Records": batch}, FakeLambdaContext()) == {"batchItemFailures": []}

    # THEN both are done, alone, one at a time; the record counts the try that died
    assert [world.record(k).tries for k in ("raw/stopped.jpg", "raw/waiting.jpg")] == [2, 1]
    assert all(n == 0 for n in world.engine.beside.values())


def test_an_image_whose_invocation_died_twice_is_failed_interrupted(world, capsys):
    key = "raw/stopped.jpg"
    message = s3_message(key, world.upload(key, JPEG + b"stopped"), "0A", 0)
    world.engine.inner.before_process = stop_invocation
    for received in (1, 2):  # two invocations died with it
        message["attributes"]["ApproximateReceiveCount"] = str(received)
        with pytest.raises(InvocationKilled):
            lambda_handler({"Records": [message]}, FakeLambdaContext())
    world.engine.inner.before_process = lambda: pytest.fail("a third try")
    message["attributes"]["ApproximateReceiveCount"] = "3"

    assert lambda_handler({"Records": [message]}, FakeLambdaContext()) == {"batchItemFailures": []}

    record = world.record(key)
    assert (record.status, record.error.code, record.tries) == (Status.failed, "interrupted", 2)
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "ImagesFailed" in x]
    assert emf and emf[0]["error_code"] == "interrupted"


def test_the_uploader_recorded_after_first_sight(world):
    key = "raw/mine.jpg"
    etag = world.upload(key, JPEG + b"mine", Metadata={"uploader": "alice%40example.org"})
    message = s3_message(key, etag, "0A", 0)
    assert lambda_handler({"Records": [message]}, FakeLambdaContext()) == {"batchItemFailures": []}
    record = world.record(key)
    assert (record.status, record.uploader) == (Status.done, "alice@example.org")
