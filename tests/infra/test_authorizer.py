"""The write authoriser's inline code (template AuthorizerFunction), run against moto."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import template as tpl

pytestmark = pytest.mark.integration

KEY = "k" * 40


@pytest.fixture
def authorize(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, Any]], Any]]:
    code = tpl.properties(None, "AuthorizerFunction")["Code"]["ZipFile"]
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(Name="api-key", SecretString=KEY)["ARN"]
        monkeypatch.setenv("IMGPIPE_API_KEY_SECRET_ARN", arn)
        namespace: dict[str, Any] = {}
        exec(compile(code, "index.py", "exec"), namespace)  # the function's whole source
        yield lambda event: namespace["handler"](event, None)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"x-api-key": KEY}, True),
        ({"x-api-key": KEY[:-1] + "x"}, False),
        ({"x-api-key": ""}, False),
        ({}, False),
        (None, False),
    ],
)
def test_only_the_secret_key_is_authorised(
    authorize: Callable[[dict[str, Any]], Any], headers: dict[str, str] | None, allowed: bool
) -> None:
    assert authorize({"headers": headers}) == {"isAuthorized": allowed}
