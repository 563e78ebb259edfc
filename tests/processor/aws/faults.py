"""Fault injection through botocore's own event hooks: no patching of module globals.

``FailFirst`` answers the first N matching requests itself, before they leave the client,
with a response AWS really sends (S3 503 SlowDown, S3 500 InternalError, DynamoDB 400
ThrottlingException, DynamoDB 500 InternalServerError) or a dropped connection. botocore then
handles it exactly as the real thing: its retries, then the error the adapters translate.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

S3_SLOW_DOWN = (
    503,
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate.</Message></Error>",
)
S3_INTERNAL = (
    500,
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
    b"<Message>We encountered an internal error. Please try again.</Message></Error>",
)
DYNAMO_THROTTLED = (
    400,
    b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
    b'"message":"Rate of requests exceeds the allowed throughput."}',
)
DYNAMO_INTERNAL = (
    500,
    b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError",'
    b'"message":"Internal server error"}',
)
CONNECTION_DROPPED = None  # raise ConnectionClosedError instead of answering


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class FailFirst:
    """A 'before-send' handler failing the first ``n`` requests it sees (``only``: of those
    whose URL contains it, e.g. one object's key when images of a batch run at once)."""

    def __init__(self, n: int, fault: tuple[int, bytes] | None, only: str | None = None) -> None:
        self.only = only
        self.remaining = n
        self.injected = 0
        self.fault = fault
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.only is not None and self.only not in request.url:
            return None
        with self._lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            self.injected += 1
        if self.fault is None:
            raise ConnectionClosedError(endpoint_url=request.url)
        status, body = self.fault
        headers = {"x-amzn-requestid": "injected", "x-amz-request-id": "injected"}
        if body.startswith(b"{"):
            headers["Content-Type"] = "application/x-amz-json-1.0"
        else:
            headers["Content-Type"] = "application/xml"
        return AWSResponse(request.url, status, headers, _Raw(body))


def inject(client: Any, event: str, fault: FailFirst) -> FailFirst:
    """``event`` like 'before-send.s3.GetObject' or 'before-send.dynamodb' (all operations)."""
    client.meta.events.register(event, fault)
    return fault
