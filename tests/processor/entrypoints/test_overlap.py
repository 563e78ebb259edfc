"""Images of a batch in flight at once (IMGPIPE_IMAGES_AT_ONCE): the same outcome as one
after another, failures still one message's own, one image at a time on a 1-vCPU function.

moto in-process for S3 and DynamoDB and the fake engine, wrapped to see how many images it
works on at once (no timing is measured or compared).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from processor.core.errors import TransientError
from processor.core.keys import image_id
from processor.entrypoints import bootstrap
from processor.entrypoints.handler import lambda_handler
from processor.entrypoints.settings import ProcessorSettings
from tests.aws import BUCKET, REGION, create_table
from tests.fakes.engine import FakeEngine
from tests.lambda_runtime import FakeLambdaContext, load_event

pytestmark = pytest.mark.integration

# Good images, a bad one (failed record, message done) and one whose engine call fails with a
# retryable error (message reported failed, nothing written).
BODIES = {
    "raw/a.jpg": b"\xff\xd8\xff a",
    "raw/b.jpg": b"\xff\xd8\xff b",
    "raw/bad.jpg": b"BAD bytes",
    "raw/flaky.jpg": b"\xff\xd8\xff flaky",
    "raw/c.jpg": b"\xff\xd8\xff c",
    "raw/d.jpg": b"\xff\xd8\xff d",
}
FLAKY = image_id(BUCKET, "raw/flaky.jpg")


class WatchedEngine:
    """The fake engine, counting the images inside ``process`` at once.

    With ``wait``, each call waits (up to a guard of 30 s) until a second image is in
    ``process`` too or every image has arrived, so images that can overlap are seen overlapping.
    """

    def __init__(self, images: int, flaky: frozenset[str], wait: bool) -> None:
        self._wait = wait
        self.inner = FakeEngine()
        self._flaky = flaky
        self.config = self.inner.config
        self._images = images
        self._arrived = 0
        self._inside = 0
        self.most_at_once = 0
        self._changed = threading.Condition()

    def spool(self, source: Any) -> Any:
        return self.inner.spool(source)

    def process(self, source: Any, **kwargs: Any) -> Any:
        with self._changed:
            self._arrived += 1
            self._inside += 1
            self.most_at_once = max(self.most_at_once, self._inside)
            self._changed.notify_all()
            if self._wait:
                self._changed.wait_for(
                    lambda: self._inside >= 2 or self._arrived >= self._images, timeout=30
                )
        try:
            if kwargs["image_id"] in self._flaky:
                raise TransientError("S3 said SlowDown")
            return self.inner.process(source, **kwargs)
        finally:
            with self._changed:
                self._inside -= 1


def _batch() -> dict[str, Any]:
    template = load_event("sqs_s3_batch")["Records"][2]
    records = []
    for n, key in enumerate(BODIES):
        record = copy.deepcopy(template)
        record["messageId"] = f"m{n}"
        record["body"] = json.dumps({"type": "imgpipe.reprocess", "bucket": BUCKET, "key": key})
        record["attributes"]["ApproximateReceiveCount"] = "1"  # first deliveries: none alone
        records.append(record)
    return {"Records": records}


def _run(
    monkeypatch: pytest.MonkeyPatch,
    images_at_once: int,
    memory_mb: int,
    flaky: frozenset[str] = frozenset({FLAKY}),
) -> tuple[dict[str, Any], dict[str, Any], WatchedEngine]:
    """One batch through the handler: (response, records by key, engine)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("IMGPIPE_IMAGES_AT_ONCE", str(images_at_once))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(memory_mb))
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        create_table(boto3.client("dynamodb", region_name=REGION))
        for key, body in BODIES.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        engine = WatchedEngine(len(BODIES), flaky, wait=images_at_once > 1 and memory_mb > 1769)
        container = bootstrap.build(ProcessorSettings(), engine=engine)  # type: ignore[arg-type]
        bootstrap.reset(container)
        response = dict(lambda_handler(_batch(), FakeLambdaContext()))
        records = {}
        for key in BODIES:
            record = container.repo.get(image_id(BUCKET, key))
            records[key] = None if record is None else _comparable(record.model_dump())
    return response, records, engine


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two runs of the same batch (clock, timings)."""
    for name in ("created_at", "updated_at", "processing_ms", "timings"):
        record.pop(name, None)
    return record


@pytest.fixture
def _quiet_container() -> Iterator[None]:
    yield
    bootstrap.reset()


@pytest.mark.usefixtures("_quiet_container")
def test_overlapped_images_give_the_same_records_and_response_as_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the same batch (good, bad and flaky images), WHEN it runs one image at a time
    # and then two at once on a 2-vCPU function
    alone, alone_records, alone_engine = _run(monkeypatch, 1, memory_mb=3008)
    overlapped, overlapped_records, engine = _run(monkeypatch, 2, memory_mb=3008)
    # THEN the second run really overlapped, and the first did not
    assert alone_engine.most_at_once == 1
    assert engine.most_at_once == 2
    # ... and both end the same: every record, the bad image failed, the flaky one retried
    assert overlapped_records == alone_records
    assert alone_records["raw/bad.jpg"]["status"] == "failed"
    assert alone_records["raw/flaky.jpg"]["status"] == "processing"  # never marked done
    assert all(alone_records[k]["status"] == "done" for k in ("raw/a.jpg", "raw/c.jpg"))
    assert overlapped == alone == {"batchItemFailures": [{"itemIdentifier": "m3"}]}


@pytest.mark.usefixtures("_quiet_container")
def test_failures_are_reported_in_batch_order_whichever_finishes_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a batch where every message fails with a retryable error
    every = frozenset(image_id(BUCKET, key) for key in BODIES)
    response, records, engine = _run(monkeypatch, 2, memory_mb=3008, flaky=every)
    # THEN each is reported once, in the batch's order, and nothing was written
    assert engine.most_at_once == 2
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{n}"} for n in range(6)]}
    assert {r["status"] for r in records.values()} == {"processing"}


@pytest.mark.usefixtures("_quiet_container")
def test_each_image_in_flight_logs_with_its_own_keys(
    monkeypatch: pytest.MonkeyPatch, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    _, _, engine = _run(monkeypatch, 2, memory_mb=3008)
    lines = log_lines()
    assert engine.most_at_once == 2
    done = [line for line in lines if line["message"] == "image done"]
    assert len(done) == 4
    message_of = {key: f"m{n}" for n, key in enumerate(BODIES)}
    for line in done:
        assert line["image_id"] == image_id(BUCKET, line["key"])
        assert line["message_id"] == message_of[line["key"]]


@pytest.mark.usefixtures("_quiet_container")
def test_a_one_vcpu_function_works_on_one_image_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN IMGPIPE_IMAGES_AT_ONCE=2 on a 1,024 MB function (less than one vCPU)
    response, records, engine = _run(monkeypatch, 2, memory_mb=1024)
    # THEN the images ran one after another, each with the whole memory budget
    assert engine.most_at_once == 1
    settings = ProcessorSettings()
    assert settings.images_in_flight == 1
    assert settings.image_memory_bytes == (1024 - 256) * 1024 * 1024
    assert response == {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    assert records["raw/d.jpg"] is not None and records["raw/d.jpg"]["status"] == "done"
