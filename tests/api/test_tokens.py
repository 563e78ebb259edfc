"""api/tokens.py against a real issuer on loopback: the checks API Gateway's JWT authoriser
makes, where the local stack's tests (tests/cli/test_tokens.py) do not reach."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from api.problems import ServiceUnavailable
from api.tokens import InvalidToken, TokenVerifier
from cli.local.oidc import LOCAL_AUDIENCE, LocalIssuer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    started = LocalIssuer()
    started.start()
    try:
        yield started
    finally:
        started.stop()


def test_a_good_token_gives_its_subject_and_scopes(issuer: LocalIssuer) -> None:
    verifier = TokenVerifier(issuer.url, [LOCAL_AUDIENCE])
    verified = verifier.verify(issuer.token("ann", scopes=["imgpipe/admin", "openid"]))
    assert verified.subject == "ann"
    assert verified.scopes == {"imgpipe/admin", "openid"}


def test_a_token_without_aud_is_matched_by_its_client_id_as_cognito_sends_it(
    issuer: LocalIssuer,
) -> None:
    # Cognito's access tokens carry client_id, not aud; API Gateway accepts either.
    token = issuer.token("ann", audience=None)
    assert TokenVerifier(issuer.url, [issuer.client_id]).verify(token).subject == "ann"
    with pytest.raises(InvalidToken, match="another audience"):
        TokenVerifier(issuer.url, [LOCAL_AUDIENCE]).verify(token)


def test_a_token_that_is_not_valid_yet_is_refused(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    token = issuer.token("ann")
    # The same token, checked by a clock an hour behind: issued "in the future".
    now = time.time()
    monkeypatch.setattr("api.tokens.time.time", lambda: now - 3600)
    with pytest.raises(InvalidToken, match="not valid yet"):
        TokenVerifier(issuer.url, [LOCAL_AUDIENCE]).verify(token)


def test_an_unreachable_issuer_is_a_503_that_names_no_address(issuer: LocalIssuer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    verifier = TokenVerifier(f"http://127.0.0.1:{port}", [LOCAL_AUDIENCE])
    with pytest.raises(ServiceUnavailable) as caught:
        verifier.verify(issuer.token("ann"))
    assert str(port) not in (caught.value.detail or "")


def test_keys_are_fetched_once_not_per_token(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(issuer.url, [LOCAL_AUDIENCE])
    fetches: list[str] = []
    real = verifier._fetch_jwks

    def counted() -> object:
        fetches.append("jwks")
        return real()

    monkeypatch.setattr(verifier, "_fetch_jwks", counted)
    for n in range(5):
        verifier.verify(issuer.token(f"user-{n}"))
    assert fetches == ["jwks"]
