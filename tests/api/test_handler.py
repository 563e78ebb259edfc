"""api.handler.lambda_handler driven by recorded API Gateway HTTP API (payload 2.0) events."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import api.handler
from processor.core.errors import ConfigError
from tests.api.conftest import API_KEY, CDN
from tests.api.gateway import RECORD, FakeContext, invoke
from tests.conftest import ROOT
from tests.lambda_runtime import load_event

pytestmark = pytest.mark.unit


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


def test_healthz(gateway_fakes) -> None:
    status, headers, body = invoke(load_event("apigw_get_healthz"))
    assert (status, body) == (200, {"status": "ok"})
    assert headers["content-type"] == "application/json"


def test_list_with_query_string(gateway_fakes) -> None:
    reader, _ = gateway_fakes
    status, _, body = invoke(load_event("apigw_get_images"))
    assert status == 200
    assert body["count"] == 2 and body["next"]
    assert reader.calls[-1]["limit"] == 2 and reader.calls[-1]["status"].value == "done"


def test_get_image_then_304_with_its_etag(gateway_fakes) -> None:
    event = load_event("apigw_get_image")
    del event["headers"]["if-none-match"]
    status, headers, body = invoke(event)
    assert status == 200 and body["id"] == RECORD.id
    assert body["src"].startswith(CDN + "/optimized/")
    event["headers"]["if-none-match"] = headers["etag"]
    status, headers304, body = invoke(event)
    assert status == 304 and body == "" and headers304["etag"] == headers["etag"]


def test_unknown_image_is_problem_json(gateway_fakes) -> None:
    raw = api.handler.lambda_handler(load_event("apigw_get_image_unknown"), FakeContext())
    assert raw["isBase64Encoded"] is False  # problem+json goes back as text
    status, headers, body = invoke(load_event("apigw_get_image_unknown"))
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    assert body["code"] == "not_found" and body["instance"] == "/images/" + "a" * 26


def test_upload_with_base64_body_and_cors(gateway_fakes) -> None:
    status, headers, body = invoke(load_event("apigw_post_upload"))
    assert status == 200, body
    assert body["key"].startswith("raw/") and body["key"].endswith("/Holiday-photo.jpg")
    assert json.loads(body["fields"]["policy"])["ct"] == "image/jpeg"
    assert headers["access-control-allow-origin"] == "https://app.example.com"


def test_delete_in_gateway_mode(gateway_fakes) -> None:
    _, store = gateway_fakes
    store.objects[RECORD.source_key] = b"x"
    status, _, body = invoke(load_event("apigw_delete_image"))
    assert status == 202 and RECORD.source_key in body["deleted_keys"]
    assert store.objects == {}


def test_openapi_through_the_gateway(gateway_fakes) -> None:
    status, _, body = invoke(load_event("apigw_get_openapi"))
    assert status == 200 and "/images/{image_id}" in body["paths"]


def test_api_key_mode_refuses_gateway_events_without_the_key(
    gateway_fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMGPIPE_AUTH_MODE", "api_key")
    monkeypatch.setenv("IMGPIPE_API_KEY", API_KEY)
    api.handler.get_handler.cache_clear()
    event = load_event("apigw_delete_image")
    status, _, body = invoke(event)
    assert status == 401 and body["code"] == "unauthorized"


def test_missing_setting_is_named(gateway_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMGPIPE_CDN_BASE_URL")
    with pytest.raises(ConfigError, match="IMGPIPE_CDN_BASE_URL"):
        api.handler.lambda_handler(load_event("apigw_get_healthz"), FakeContext())
