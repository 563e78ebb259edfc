"""api.handler.lambda_handler with its real adapters, built from the environment, against moto."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import api.handler
from api.deps import get_queue, get_repo, get_store
from tests.api.conftest import BUCKET, CDN, CURSOR_SECRET, make_record
from tests.fakes.api import FakeQueue, FakeStore
from tests.fakes.records import FakeReader

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
RECORD = make_record(1)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


class FakeContext:
    """The parts of a Lambda context anything may touch, with a working deadline."""

    function_name = "imgpipe-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-api"
    memory_limit_in_mb = 512
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/imgpipe-api"
    log_stream_name = "2024/05/01/[$LATEST]abcdef"

    def __init__(self, budget_ms: int = 29_000) -> None:
        self._deadline = time.monotonic() + budget_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # As the template configures the function: auth delegated to the gateway's IAM routes.
    for name, value in {
        "IMGPIPE_BUCKET": BUCKET,
        "IMGPIPE_TABLE": "imgpipe-images",
        "IMGPIPE_CDN_BASE_URL": CDN,
        "IMGPIPE_AUTH_MODE": "gateway",
        "IMGPIPE_CURSOR_SECRET": CURSOR_SECRET,
        "IMGPIPE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "IMGPIPE_CORS_ORIGINS": "https://app.example.com",
    }.items():
        monkeypatch.setenv(name, value)
    api.handler.get_handler.cache_clear()
    yield
    api.handler.get_handler.cache_clear()


@pytest.fixture
def fakes(environment: None) -> tuple[FakeReader, FakeStore]:
    reader, store = FakeReader([make_record(i) for i in range(5)]), FakeStore()
    app = api.handler.get_handler().app
    app.dependency_overrides[get_repo] = lambda: reader
    app.dependency_overrides[get_store] = lambda: store
    app.dependency_overrides[get_queue] = FakeQueue
    return reader, store


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = api.handler.lambda_handler(event, FakeContext())
    body = response.get("body", "")
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    parsed = json.loads(body) if body and "json" in headers.get("content-type", "") else body
    return response["statusCode"], headers, parsed


def test_real_adapters_from_the_environment(environment: None, monkeypatch) -> None:
    """No overrides: the handler builds its DynamoDB repository from the settings (moto)."""
    from moto import mock_aws

    from processor.aws.dynamo import serialize, to_item
    from tests.aws import client, create_table

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        dynamodb = client("dynamodb", None)
        create_table(dynamodb, "imgpipe-images")
        dynamodb.put_item(TableName="imgpipe-images", Item=serialize(to_item(RECORD)))
        status, _, body = invoke(load_event("apigw_get_image_unknown"))
        assert status == 404
        event = load_event("apigw_get_image")
        del event["headers"]["if-none-match"]
        status, _, body = invoke(event)
    assert status == 200 and body["id"] == RECORD.id and body["width"] == 4000
