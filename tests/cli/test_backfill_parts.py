"""The backfill's pure parts: the pace, the checkpoint, what is sent, the estimate, the
messages it sends, and the S3 Batch Operations request (against botocore's own model)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ParamValidationError

from cli.backfill.batch_operations import create_job_request, manifest_csv, validate
from cli.backfill.estimate import Model, Skip, estimate, skip_reason, suffix_format
from cli.backfill.feed import Checkpoint, Pacer
from cli.backfill.sources import Entry, Inventory, SourceError
from processor.core.errors import MalformedMessage
from processor.core.events import Kind, parse_body
from processor.core.messages import backfill_message, forget_message
from processor.core.sources import Source, check_sources, parse_sources

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RecordingStop(threading.Event):
    """A stop event whose wait advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        self.clock.now += timeout or 0.0
        return self.is_set()


def test_the_pacer_never_sends_faster_than_the_rate() -> None:
    clock = FakeClock()
    stop = RecordingStop(clock)
    pacer = Pacer(25.0, stop, clock)
    assert pacer.batch == 10
    start = clock.now
    for _ in range(10):
        assert pacer.wait()
        pacer.sent(10)
    # 100 sent: the 10th batch left no earlier than 90 messages / 25 per second after the first
    assert clock.now - start == pytest.approx(90 / 25)
    assert Pacer(3.0, stop, clock).batch == 3  # no bursts of 10 at a low rate
    stop.set()
    assert not pacer.wait()  # a stop ends the wait


def test_the_checkpoint_round_trips_and_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    cp = Checkpoint(source="s3://b/p", queue_url="q", started_at="2024-01-01T00:00:00.000000Z")
    cp.position, cp.sent, cp.total = {"after": "p/ü 猫.jpg"}, 30, 120
    cp.skipped["folder marker"] += 2
    cp.save(path)
    again = Checkpoint.load(path)
    assert again == cp
    assert not (tmp_path / "cp.json.tmp").exists()
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError):
        Checkpoint.load(path)


def test_what_is_sent_and_why_not() -> None:
    sources = parse_sources("b/legacy/,photos/")

    def why(bucket: str, key: str) -> str | None:
        return skip_reason(
            Entry(bucket, key, 1, None),
            bucket="b",
            raw_prefix="raw/",
            public_prefix="public/",
            sources=sources,
        )

    assert why("b", "raw/x.jpg") is None
    assert why("b", "legacy/x.jpg") is None
    assert why("photos", "any/x.jpg") is None
    assert why("b", "public/thumbs/x.webp") == Skip.output
    assert why("b", "legacy/folder/") == Skip.folder
    assert why("b", "elsewhere/x.jpg") == Skip.refused
    assert why("other", "x.jpg") == Skip.refused
    assert [suffix_format(k) for k in ("a/b.JPG", "c.tiff", "d.heic", "noext", "e.txt")] == [
        "jpeg",
        "tiff",
        "heic",
        "other",
        "other",
    ]


def test_sources_never_include_the_pipelines_output() -> None:
    assert parse_sources("arn:aws:s3:::photos/archive/* s3://b/x/") == (
        Source("photos", "archive/"),
        Source("b", "x/"),
    )
    for text in ("b/", "b/public/", "b/pub"):
        with pytest.raises(ValueError, match="overlaps"):
            check_sources(parse_sources(text), bucket="b", public_prefix="public/")
    check_sources(parse_sources("b/legacy/,c/"), bucket="b", public_prefix="public/")


def test_the_estimate_is_the_count_at_the_pace_and_the_models_cost() -> None:
    model = Model(seconds_per_image=0.5, usd_per_1000=0.04, max_concurrency=10)
    est = estimate(1000, rate=5.0, model=model, max_concurrency=10, max_cost=None)
    assert (est.seconds, est.usd, est.pipeline_rate) == (200.0, pytest.approx(0.04), 20.0)
    # Asked for more than the processor sustains: the processor's rate is the pace.
    fast = estimate(1000, rate=100.0, model=model, max_concurrency=10, max_cost=None)
    assert fast.seconds == 50.0
    capped = estimate(1000, rate=5.0, model=model, max_concurrency=10, max_cost=0.02)
    assert capped.capped_objects == 500 and capped.usd == pytest.approx(0.02)


def test_backfill_and_forget_messages_parse_to_their_kinds() -> None:
    (event,) = parse_body(backfill_message("photos", "a/ü +x.jpg", etag='"abc"', size=12))
    assert (event.kind, event.key, event.etag, event.size) == (
        Kind.backfill,
        "a/ü +x.jpg",
        "abc",
        12,
    )
    assert not event.force
    (gone,) = parse_body(forget_message("photos", "a.jpg"))
    assert gone.kind is Kind.forget
    with pytest.raises(MalformedMessage):
        parse_body(json.dumps({"type": "imgpipe.backfill", "bucket": "b", "key": "k", "size": -1}))


def test_the_batch_operations_request_fits_s3controls_model() -> None:
    csv = manifest_csv([Entry("photos", "a/ü 猫+x.jpg", None, None), Entry("b", "y.png", 1, None)])
    assert csv.decode().splitlines() == ["photos,a/%C3%BC+%E7%8C%AB%2Bx.jpg", "b,y.png"]
    request = create_job_request(
        account="123456789012",
        partition="aws",
        bucket="imgpipe-bucket",
        manifest_key="backfill/manifests/x.csv",
        manifest_etag='"0123"',
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:imgpipe-processor",
        role_arn="arn:aws:iam::123456789012:role/imgpipe-BatchOperationsRole-X",
        label="s3://photos/",
    )
    validate(request)  # raises if botocore's model of CreateJob disagrees
    assert request["Manifest"]["Location"] == {
        "ObjectArn": "arn:aws:s3:::imgpipe-bucket/backfill/manifests/x.csv",
        "ETag": "0123",
    }
    assert request["Report"]["Prefix"] == "backfill/reports"
    assert request["Operation"]["LambdaInvoke"]["InvocationSchemaVersion"] == "2.0"
    broken = {**request, "Priority": "high"}
    with pytest.raises(ParamValidationError):
        validate(broken)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


class _S3:
    def __init__(self, manifest: dict[str, object]) -> None:
        self.manifest = manifest

    def get_object(self, Bucket: str, Key: str) -> dict[str, object]:  # noqa: N803  # boto3's
        return {"Body": _Body(json.dumps(self.manifest).encode())}


def test_an_orc_inventory_is_refused_by_name() -> None:
    with pytest.raises(SourceError, match="ORC"):
        Inventory(
            _S3({"fileFormat": "ORC", "fileSchema": "struct<bucket:string>"}),
            "s3://inv/x/manifest.json",
        )
