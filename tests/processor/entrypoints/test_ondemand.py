"""The on-demand Lambda with a recorded function URL event (as CloudFront's origin group
sends it on S3's 404): moto in-process for S3 and DynamoDB, the real engine on a real photo.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import pyvips
from moto import mock_aws

from processor.aws.dynamo import DynamoImageRepository
from processor.core.errors import NoSuchRendition, OnDemandLimit
from processor.core.keys import image_id
from processor.core.ports import IMMUTABLE
from processor.core.record import ImageFacts, ImageRecord, RenditionInfo
from processor.entrypoints import ondemand
from processor.entrypoints.ondemand import lambda_handler
from tests.aws import BUCKET, REGION, TABLE, create_table
from tests.conftest import GOOD
from tests.lambda_runtime import FakeLambdaContext, load_event

pytestmark = pytest.mark.integration

PHOTO = GOOD / "flowers.jpeg"  # 1920 x 1080
VERSION = "0123456789"
SOURCE = "raw/flowers.jpeg"
IID = image_id(BUCKET, SOURCE)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, DynamoImageRepository]]:
    """A done photo: its original and one eager rendition (the original's bytes, 1920 px)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("IMGPIPE_ON_DEMAND", json.dumps({"max_per_image": 3}))
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb)
        data = PHOTO.read_bytes()
        s3.put_object(Bucket=BUCKET, Key=SOURCE, Body=data)
        eager = f"optimized/{IID}-{VERSION}.jpg"
        s3.put_object(Bucket=BUCKET, Key=f"public/{eager}", Body=data)
        facts = ImageFacts(
            sha256="0" * 64, input_bytes=len(data), format="jpeg", width=1920, height=1080
        )
        info = RenditionInfo(
            name="optimized",
            key=eager,
            format="jpeg",
            content_type="image/jpeg",
            width=1920,
            height=1080,
            bytes=len(data),
        )
        record = ImageRecord.first_sight(
            image_id=IID, bucket=BUCKET, source_key=SOURCE, now="2024-05-01T12:00:00Z"
        ).done(
            now="2024-05-01T12:00:01Z",
            sequencer="01",
            config_version="c",
            content_version=VERSION,
            facts=facts,
            renditions=[info],
            processing_ms=1.0,
            timings={},
        )
        repo = DynamoImageRepository(dynamodb, TABLE)
        repo.save(record)
        ondemand.service.cache_clear()
        yield s3, repo
        ondemand.service.cache_clear()


def event(path: str, method: str = "GET") -> dict[str, Any]:
    e = load_event("function_url_get_size")
    e["rawPath"] = e["requestContext"]["http"]["path"] = path
    e["requestContext"]["http"]["method"] = method
    return e


def metric_names(out: str) -> set[str]:
    emf = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    return {m["Name"] for e in emf for d in e["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_a_miss_is_made_stored_listed_and_answered(world: Any, capsys: Any) -> None:
    s3, repo = world
    key = f"sizes/{IID}-{VERSION}-640w.webp"

    response = lambda_handler(event(f"/{key}"), FakeLambdaContext())

    assert response["statusCode"] == 200, response
    assert response["isBase64Encoded"] is True
    assert response["headers"]["Content-Type"] == "image/webp"
    assert response["headers"]["Cache-Control"] == IMMUTABLE
    data = base64.b64decode(response["body"])
    made = pyvips.Image.new_from_buffer(data, "")
    assert (made.width, made.height) == (640, 360)
    stored = s3.get_object(Bucket=BUCKET, Key=f"public/{key}")
    assert stored["Body"].read() == data
    assert (stored["ContentType"], stored["CacheControl"]) == ("image/webp", IMMUTABLE)
    record = repo.get(IID)
    assert record is not None
    (listed,) = [r for r in record.renditions if r.on_demand]
    assert (listed.key, listed.width, listed.bytes) == (key, 640, len(data))
    assert "SizesMade" in metric_names(capsys.readouterr().out)

    # the same miss again (an edge that has not cached it): read, not made
    again = lambda_handler(event(f"/{key}"), FakeLambdaContext())
    assert base64.b64decode(again["body"]) == data
    assert "SizesServed" in metric_names(capsys.readouterr().out)
    assert len(repo.get(IID).renditions) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "method", "status", "code"),
    [
        (f"/sizes/{IID}-{VERSION}-641w.jpg", "GET", 400, "size_not_allowed"),
        (f"/sizes/{IID}-{VERSION}-640x360-fill.jpg", "GET", 400, "size_not_allowed"),
        (f"/sizes/{IID}-9999999999-640w.jpg", "GET", 404, "no_such_rendition"),
        ("/thumbs/whatever.jpg", "GET", 404, "no_such_rendition"),
        (f"/sizes/{IID}-{VERSION}-640w.jpg", "POST", 405, "method_not_allowed"),
    ],
)
def test_refusals_make_nothing(
    world: Any, capsys: Any, path: str, method: str, status: int, code: str
) -> None:
    s3, repo = world
    response = lambda_handler(event(path, method), FakeLambdaContext())
    assert response["statusCode"] == status
    assert json.loads(response["body"])["code"] == code
    assert response["headers"]["Content-Type"] == "application/problem+json"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="public/sizes/").get("KeyCount", 0)
    assert listed == 0
    assert "SizesRefused" in metric_names(capsys.readouterr().out)


def test_the_claim_is_once_per_size_and_bounded_per_image(world: Any) -> None:
    _, repo = world
    claim = {"content_version": VERSION, "now": 1000, "stale_before": 880, "max_per_image": 3}
    assert repo.claim_size(IID, key="sizes/a", **claim) is True
    assert repo.claim_size(IID, key="sizes/a", **claim) is False  # someone is making it
    # an abandoned claim (older than stale_before) is taken again
    assert repo.claim_size(IID, key="sizes/a", **{**claim, "now": 2000, "stale_before": 1500})
    assert repo.claim_size(IID, key="sizes/b", **claim) is True
    with pytest.raises(OnDemandLimit):  # three claims so far: the image's bound
        repo.claim_size(IID, key="sizes/c", **claim)
    with pytest.raises(NoSuchRendition):
        repo.claim_size(IID, key="sizes/c", **{**claim, "content_version": "other00000"})


def test_a_throttled_image_answers_429_and_makes_nothing(world: Any) -> None:
    s3, _ = world
    widths = (160, 320, 480, 640)
    statuses = [
        lambda_handler(event(f"/sizes/{IID}-{VERSION}-{w}w.jpg"), FakeLambdaContext())["statusCode"]
        for w in widths
    ]
    assert statuses == [200, 200, 200, 429]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="public/sizes/")["KeyCount"]
    assert listed == 3
