"""The CloudFront stand-in and the gallery page, on the real apps, against moto over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from cli.local.cdn import create_cdn_app
from cli.local.site import create_gallery_router
from tests.cli.conftest import aws_client

pytestmark = pytest.mark.integration

IMMUTABLE = "public, max-age=31536000, immutable"
KEY = "a-local-api-key-0123456789"
BODY = bytes(range(256)) * 40  # 10240 bytes


def settings_for(moto_endpoint: str, bucket: str) -> ApiSettings:
    return ApiSettings.model_validate(
        {
            "bucket": bucket,
            "table": "unused-table",
            "endpoint_url": moto_endpoint,
            "cdn_base_url": "http://testserver",
            "api_key": KEY,
        }
    )


@pytest.fixture
def client(moto_endpoint: str) -> Iterator[tuple[TestClient, Any, ApiSettings]]:
    """The CDN stand-in's app (an origin of its own)."""
    bucket = f"cdn-{uuid.uuid4().hex[:12]}"
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    settings = settings_for(moto_endpoint, bucket)
    with TestClient(create_cdn_app(settings)) as test_client:
        yield test_client, s3, settings


def put(s3: Any, settings: ApiSettings, key: str, **extra: Any) -> None:
    s3.put_object(
        Bucket=settings.bucket,
        Key=settings.public_prefix + key,
        Body=BODY,
        ContentType="image/webp",
        **extra,
    )


def test_renditions_are_served_with_production_headers(client: Any) -> None:
    http, s3, settings = client
    put(s3, settings, "thumbs/abc-1.webp", CacheControl=IMMUTABLE)

    response = http.get("/thumbs/abc-1.webp")
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["last-modified"].endswith("GMT")
    etag = response.headers["etag"]

    again = http.get("/thumbs/abc-1.webp", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == IMMUTABLE

    other = http.get("/thumbs/abc-1.webp", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200

    head = http.head("/thumbs/abc-1.webp")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(BODY))
    assert head.content == b""


def test_range_requests(client: Any) -> None:
    http, s3, settings = client
    put(s3, settings, "optimized/abc-1.webp")

    first = http.get("/optimized/abc-1.webp", headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.content == BODY[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{len(BODY)}"
    assert first.headers["content-length"] == "100"

    tail = http.get("/optimized/abc-1.webp", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == BODY[-10:]

    outside = http.get("/optimized/abc-1.webp", headers={"Range": f"bytes={len(BODY) + 5}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(BODY)}"

    whole = http.get("/optimized/abc-1.webp", headers={"Range": "bytes=0-1,4-5"})
    assert whole.status_code == 200
    assert whole.content == BODY
    # an object without a Cache-Control of its own still gets production's
    assert whole.headers["cache-control"] == IMMUTABLE


def test_only_public_renditions_are_reachable(client: Any) -> None:
    http, s3, settings = client
    s3.put_object(Bucket=settings.bucket, Key="raw/secret.jpg", Body=b"original")
    assert http.get("/thumbs/missing.webp").status_code == 404
    assert http.get("/thumbs/..%2F..%2Fraw%2Fsecret.jpg").status_code == 404
    assert http.get("/thumbs/.hidden").status_code == 404
    assert http.get("/raw/secret.jpg").status_code == 404
    problem = http.get("/thumbs/missing.webp").json()
    assert problem["code"] == "not_found"


def test_gallery_page_and_assets(moto_endpoint: str) -> None:
    app = create_app(settings_for(moto_endpoint, "unused-bucket"))
    app.include_router(create_gallery_router(api_key=KEY))
    http = TestClient(app)
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'<meta name="imgpipe-api-key" content="{KEY}">' in page.text
    assert "{{API_KEY}}" not in page.text
    for asset, media in (("gallery.js", "text/javascript"), ("gallery.css", "text/css")):
        response = http.get(f"/gallery/{asset}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media)
        assert len(response.content) > 500
    assert http.get("/gallery/index.html").status_code == 404
    assert http.get("/gallery/..%2Fsettings.py").status_code == 404
    # the local routes stay out of the API's OpenAPI document
    paths = http.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/thumbs", "/optimized", "/gallery"))]
    assert "/" not in paths
