"""Driving ``api.handler.lambda_handler`` as API Gateway does: a Lambda context with a working
deadline and the response read back (the function's environment and the fakes are fixtures
of tests/api/conftest.py: ``gateway_env``, ``gateway_fakes``)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import api.handler
from tests.api.conftest import make_record

RECORD = make_record(1)  # the image the recorded events ask for


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


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = api.handler.lambda_handler(event, FakeContext())
    body = response.get("body", "")
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    parsed = json.loads(body) if body and "json" in headers.get("content-type", "") else body
    return response["statusCode"], headers, parsed
