"""The authoriser's inline code (template AuthorizerFunction), run against moto's Secrets
Manager: who is let through, what the API is told, and key rotation without a redeploy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import template as tpl

pytestmark = pytest.mark.integration

KEY = "k" * 40
NEW_KEY = "n" * 40


class Authoriser:
    """The function's whole source, exec'd as Lambda would import index.py."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, arn: str, **env: str) -> None:
        monkeypatch.setenv("IMGPIPE_API_KEY_SECRET_ARN", arn)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = tpl.properties(None, "AuthorizerFunction")["Code"]["ZipFile"]
        self.namespace: dict[str, Any] = {}
        exec(compile(code, "index.py", "exec"), self.namespace)

    def __call__(self, headers: dict[str, str] | None, route: str = "POST /uploads") -> Any:
        return self.namespace["handler"]({"headers": headers, "routeKey": route}, None)

    def age_cache(self, seconds: float) -> None:
        """As if ``seconds`` had passed since the key was read (no sleeping in tests)."""
        cache = self.namespace["CACHE"]
        if cache["at"] is not None:
            cache["at"] -= seconds


@pytest.fixture
def secret(aws_env: None) -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="api-key", SecretString=KEY)["ARN"]
        yield client, arn


@pytest.fixture
def authorize(secret: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    return Authoriser(monkeypatch, secret[1])


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
def test_only_the_secret_key_may_write(
    authorize: Callable[..., Any], headers: dict[str, str] | None, allowed: bool
) -> None:
    assert authorize(headers) == {"isAuthorized": allowed, "context": {"writer": allowed}}


def test_public_reads_pass_and_the_api_is_told_who_holds_the_key(
    authorize: Callable[..., Any],
) -> None:
    assert authorize({}, "GET /{proxy+}") == {"isAuthorized": True, "context": {"writer": False}}
    assert authorize({"x-api-key": KEY}, "GET /{proxy+}") == {
        "isAuthorized": True,
        "context": {"writer": True},
    }


def test_private_reads_need_the_key_like_writes(
    secret: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    authorize = Authoriser(monkeypatch, secret[1], IMGPIPE_READS_PUBLIC="false")
    assert authorize({}, "GET /{proxy+}")["isAuthorized"] is False
    assert authorize({"x-api-key": "wrong" * 8}, "GET /")["isAuthorized"] is False
    assert authorize({"x-api-key": KEY}, "GET /{proxy+}")["isAuthorized"] is True


def test_a_rotated_key_takes_over_after_the_ttl_without_a_redeploy(
    secret: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, arn = secret
    authorize = Authoriser(monkeypatch, arn, IMGPIPE_KEY_TTL_SECONDS="60")
    assert authorize({"x-api-key": KEY})["isAuthorized"] is True

    # WHEN the secret is rotated (a new value, as `aws secretsmanager put-secret-value` does)
    client.put_secret_value(SecretId=arn, SecretString=NEW_KEY)

    # THEN within the TTL the container still holds the old key (no Secrets Manager call) ...
    authorize.age_cache(30)
    assert authorize({"x-api-key": KEY})["isAuthorized"] is True
    assert authorize({"x-api-key": NEW_KEY})["isAuthorized"] is False
    # ... and once it has passed, the new key works and the old one is refused
    authorize.age_cache(31)
    assert authorize({"x-api-key": NEW_KEY})["isAuthorized"] is True
    assert authorize({"x-api-key": KEY})["isAuthorized"] is False


def test_the_template_keeps_the_gateway_cache_short_for_rotation() -> None:
    key_authoriser = tpl.properties(None, "ApiKeyAuthorizer")
    assert key_authoriser["AuthorizerResultTtlInSeconds"] <= 60
    assert tpl.parameter_defaults()["ApiKeyTtlSeconds"] == "60"
