"""Shared ground of the API tests: settings, records, and an app wired to in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import api.handler
from api.app import create_app
from api.deps import get_queue, get_repo, get_store
from api.settings import ApiSettings
from cli.local.oidc import LocalIssuer
from processor.core.keys import image_id, rendition_key
from processor.core.record import ErrorInfo, ImageFacts, ImageRecord, RenditionInfo, Status
from tests.conftest import FAKE_AWS_ENV
from tests.fakes.api import FakeQueue, FakeStore
from tests.fakes.records import FakeReader

BUCKET = "imgpipe-test"
CDN = "https://cdn.example.test"
API_KEY = "test-api-key-0123456789"
CURSOR_SECRET = "test-cursor-secret-0123456789"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def make_settings(**overrides: object) -> ApiSettings:
    values: dict[str, object] = {
        "bucket": BUCKET,
        "table": "imgpipe-images",
        "cdn_base_url": CDN,
        "api_key": API_KEY,
        "cursor_secret": CURSOR_SECRET,
        "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/imgpipe-process",
    }
    values.update(overrides)
    return ApiSettings(**values)  # type: ignore[arg-type]


def make_record(
    n: int,
    *,
    status: Status = Status.done,
    width: int = 4000,
    height: int = 3000,
    version: str = "1a2b3c4d5e",
) -> ImageRecord:
    """The n-th image: created n seconds after T0, two renditions in JPEG and WebP."""
    source_key = f"raw/{n:032x}/img-{n}.jpg"
    iid = image_id(BUCKET, source_key)
    created = (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
    renditions = []
    if status is not Status.processing:
        for name, folder, box in (("thumb", "thumbs", 320), ("optimized", "optimized", 2048)):
            scale = min(box / width, box / height, 1.0)
            w, h = round(width * scale), round(height * scale)
            for fmt, ctype in (("jpeg", "image/jpeg"), ("webp", "image/webp")):
                renditions.append(
                    RenditionInfo(
                        name=name,
                        key=rendition_key(folder, iid, fmt, version),
                        format=fmt,
                        content_type=ctype,
                        width=w,
                        height=h,
                        bytes=w * h // (8 if fmt == "jpeg" else 12),
                    )
                )
    facts = ImageFacts(
        sha256=f"{n:064x}",
        input_bytes=1_000_000 + n,
        format="jpeg",
        width=width,
        height=height,
        dominant_color="#8a7f72",
        placeholder="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
    )
    return ImageRecord(
        id=iid,
        source_key=source_key,
        bucket=BUCKET,
        status=status,
        created_at=created,
        updated_at=created,
        facts=None if status is Status.processing else facts,
        renditions=[] if status is Status.failed else renditions,
        error=ErrorInfo(code="corrupt_image", message="the pixels do not decode")
        if status is Status.failed
        else None,
        content_version=version,
    )


@pytest.fixture
def reader() -> FakeReader:
    return FakeReader([make_record(i) for i in range(5)])


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


def wire(app: FastAPI, reader: FakeReader, store: FakeStore, queue: FakeQueue) -> FastAPI:
    app.dependency_overrides[get_repo] = lambda: reader
    app.dependency_overrides[get_store] = lambda: store
    app.dependency_overrides[get_queue] = lambda: queue
    return app


@pytest.fixture
def app(reader: FakeReader, store: FakeStore, queue: FakeQueue) -> FastAPI:
    return wire(create_app(make_settings()), reader, store, queue)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth() -> dict[str, str]:
    return {"x-api-key": API_KEY}


@pytest.fixture
def writer(app: FastAPI) -> Iterator[TestClient]:
    """A client with write authorisation (the key on every request): sees every status."""
    with TestClient(app, headers={"x-api-key": API_KEY}) as c:
        yield c


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    # Fake credentials before any client exists: nothing may ever reach real AWS.
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_endpoint(aws_credentials: None) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from tests.aws import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def stack(moto_endpoint: str):
    from tests.aws import make_stack

    return make_stack(moto_endpoint)


def stack_settings(stack, **overrides: object) -> ApiSettings:
    values: dict[str, object] = {
        "bucket": stack.bucket,
        "table": stack.table,
        "queue_url": stack.queue_url,
        "endpoint_url": stack.endpoint,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def gateway_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The API function's environment as the template sets it."""
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
def gateway_fakes(gateway_env: None) -> tuple[FakeReader, FakeStore]:
    reader, store = FakeReader([make_record(i) for i in range(5)]), FakeStore()
    app = api.handler.get_handler().app
    app.dependency_overrides[get_repo] = lambda: reader
    app.dependency_overrides[get_store] = lambda: store
    app.dependency_overrides[get_queue] = FakeQueue
    return reader, store


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """A real OpenID Connect issuer on loopback (the local stack's): keys, JWKS, tokens."""
    started = LocalIssuer()
    started.start()
    try:
        yield started
    finally:
        started.stop()
