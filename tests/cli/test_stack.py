"""The stack against an endpoint it did not start (as with LocalStack): provision, serve, stop."""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest

from cli.local.stack import LocalStack, StackOptions, bind_socket
from processor.core.errors import StackError

pytestmark = pytest.mark.integration


def test_an_external_endpoint_is_provisioned_and_served(moto_endpoint: str) -> None:
    stack = LocalStack(
        StackOptions(
            api_port=0,
            cdn_port=0,
            endpoint_url=moto_endpoint,
            worker=False,
            stack_name=f"ext-{uuid.uuid4().hex[:8]}",
            api_key="an-external-api-key-0123",
        )
    )
    try:
        urls = stack.start()
        assert urls.aws == moto_endpoint
        assert urls.cdn != urls.api  # the CDN stand-in is an origin of its own
        assert stack.resources is not None
        assert stack.resources.queue_url.startswith(moto_endpoint)
        assert stack.environments == 0 and stack.worker is None
        with httpx.Client(base_url=urls.api, timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/images").json()["data"] == []
            form = client.post(
                "/uploads",
                json={"filename": "a.jpg", "content_type": "image/jpeg"},
                headers={"x-api-key": "an-external-api-key-0123"},
            )
            assert form.status_code == 200, form.text
            assert form.json()["url"].startswith(moto_endpoint)
            assert client.post("/uploads", json={}).status_code == 401  # no key, no writes
        port = int(urls.api.rsplit(":", 1)[1])
    finally:
        stack.stop()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
    stack.stop()  # idempotent


def test_a_busy_port_is_a_clear_error(fake_aws: None) -> None:
    taken = bind_socket("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=f"127.0.0.1:{port}"):
            LocalStack(StackOptions(api_port=0, cdn_port=0, aws_port=port)).start()
    finally:
        taken.close()
