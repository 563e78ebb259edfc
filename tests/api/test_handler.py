"""api.handler.lambda_handler driven by recorded API Gateway HTTP API (payload 2.0) events."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import api.handler
from api.deps import get_queue, get_repo, get_store
from processor.core.errors import ConfigError
from tests.api.conftest import API_KEY, BUCKET, CDN, CURSOR_SECRET, make_record
from tests.fakes.api import FakeQueue, FakeStore
from tests.fakes.records import FakeReader

pytestmark = pytest.mark.unit

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


def test_importing_the_handler_loads_nothing_heavy() -> None:
    # Cold start: a fresh interpreter imports the handler without FastAPI, boto3 or pyvips.
    code = (
        "import sys, api.handler; "
        "print(sorted(m for m in ('fastapi', 'boto3', 'botocore', 'pyvips', 'pydantic') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_healthz(fakes) -> None:
    status, headers, body = invoke(load_event("apigw_get_healthz"))
    assert (status, body) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"


def test_list_with_query_string(fakes) -> None:
    reader, _ = fakes
    status, _, body = invoke(load_event("apigw_get_images"))
    assert status == 200
    assert body["count"] == 2 and body["next"]
    assert reader.calls[-1]["limit"] == 2 and reader.calls[-1]["status"].value == "done"


def test_get_image_then_304_with_its_etag(fakes) -> None:
    event = load_event("apigw_get_image")
    del event["headers"]["if-none-match"]
    status, headers, body = invoke(event)
    assert status == 200 and body["id"] == RECORD.id
    assert body["src"].startswith(CDN + "/optimized/")
    event["headers"]["if-none-match"] = headers["etag"]
    status, headers304, body = invoke(event)
    assert status == 304 and body == "" and headers304["etag"] == headers["etag"]


def test_unknown_image_is_problem_json(fakes) -> None:
    raw = api.handler.lambda_handler(load_event("apigw_get_image_unknown"), FakeContext())
    assert raw["isBase64Encoded"] is False  # problem+json goes back as text
    status, headers, body = invoke(load_event("apigw_get_image_unknown"))
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    assert body["code"] == "not_found" and body["instance"] == "/images/" + "a" * 26


def test_upload_with_base64_body_and_cors(fakes) -> None:
    status, headers, body = invoke(load_event("apigw_post_upload"))
    assert status == 200, body
    assert body["key"].startswith("raw/") and body["key"].endswith("/Holiday-photo.jpg")
    assert json.loads(body["fields"]["policy"])["ct"] == "image/jpeg"
    assert headers["access-control-allow-origin"] == "https://app.example.com"


def test_delete_in_gateway_mode(fakes) -> None:
    _, store = fakes
    store.objects[RECORD.source_key] = b"x"
    status, _, body = invoke(load_event("apigw_delete_image"))
    assert status == 202 and RECORD.source_key in body["deleted_keys"]
    assert store.objects == {}


def test_openapi_through_the_gateway(fakes) -> None:
    status, _, body = invoke(load_event("apigw_get_openapi"))
    assert status == 200 and "/images/{image_id}" in body["paths"]


def test_api_key_mode_refuses_gateway_events_without_the_key(
    fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMGPIPE_AUTH_MODE", "api_key")
    monkeypatch.setenv("IMGPIPE_API_KEY", API_KEY)
    api.handler.get_handler.cache_clear()
    event = load_event("apigw_delete_image")
    status, _, body = invoke(event)
    assert status == 401 and body["code"] == "unauthorized"


def test_missing_setting_is_named(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGPIPE_CDN_BASE_URL")
    with pytest.raises(ConfigError, match="IMGPIPE_CDN_BASE_URL"):
        api.handler.lambda_handler(load_event("apigw_get_healthz"), FakeContext())
