"""api/tokens.py against a real issuer on loopback: the checks API Gateway's JWT authoriser
makes, where the local stack's tests (tests/cli/test_tokens.py) do not reach."""

from __future__ import annotations

import socket

import pytest

from api.problems import ServiceUnavailable
from api.tokens import InvalidToken, TokenVerifier
from cli.local.oidc import LOCAL_AUDIENCE, LocalIssuer

pytestmark = pytest.mark.integration


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


MALFORMED: dict[str, dict[str, object]] = {
    # JSON's NaN and Infinity compare false with every number: no time check could fail.
    "exp NaN": {"exp": float("nan")},
    "exp Infinity": {"exp": float("inf")},
    "iat NaN": {"iat": float("nan")},
    "nbf -Infinity": {"nbf": float("-inf")},
    # An object's keys were taken for its audiences.
    "aud an object": {"aud": {LOCAL_AUDIENCE: 1}},
    "aud a list with a number": {"aud": [LOCAL_AUDIENCE, 7]},
    "sub a number": {"sub": 123},
    "sub a list": {"sub": ["ann"]},
    "sub an object": {"sub": {"id": "ann"}},
    # Only a space separates scopes (RFC 6749): a no-break space split this into the admin's.
    "NBSP in scope": {"scope": "photos\u00a0imgpipe/admin"},
    "tab in scope": {"scope": "photos\timgpipe/admin"},
    "scope a number": {"scope": 7},
    "scp a list with a number": {"scope": None, "scp": ["imgpipe/admin", 7]},
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_claims_are_refused(issuer: LocalIssuer, kind: str) -> None:
    token = issuer.token("ann", claims=MALFORMED[kind])
    with pytest.raises(InvalidToken):
        TokenVerifier(issuer.url, [LOCAL_AUDIENCE]).verify(token)


def test_scopes_are_split_on_spaces_and_read_from_scp_lists(issuer: LocalIssuer) -> None:
    verifier = TokenVerifier(issuer.url, [LOCAL_AUDIENCE])
    spaced = issuer.token("ann", claims={"scope": " photos  imgpipe/admin "})
    assert verifier.verify(spaced).scopes == {"photos", "imgpipe/admin"}
    listed = issuer.token("ann", claims={"scp": ["photos", "imgpipe/admin"]})
    assert verifier.verify(listed).scopes == {"photos", "imgpipe/admin"}
    assert verifier.verify(issuer.token(None)).subject is None


def test_a_removed_key_stops_working_within_the_keys_max_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api import tokens

    rotating = LocalIssuer()
    rotating.start()
    try:
        clock = [1000.0]
        monkeypatch.setattr(tokens.time, "monotonic", lambda: clock[0])
        verifier = TokenVerifier(rotating.url, [LOCAL_AUDIENCE])
        old = rotating.token("ann")
        assert verifier.verify(old).subject == "ann"
        # GIVEN the issuer drops the key (a leak, a rotation) and no token names a new one
        rotating.rotate()
        clock[0] += tokens.KEYS_MAX_AGE_S - 1
        assert verifier.verify(old).subject == "ann"  # the keys held are young enough
        # WHEN the keys held grow older than the bound THEN they are fetched again
        clock[0] += 2
        with pytest.raises(InvalidToken, match="does not publish"):
            verifier.verify(old)
        assert verifier.verify(rotating.token("ann")).subject == "ann"
    finally:
        rotating.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example/",
        "http://127.0.0.1@evil.example",
        "http://localhost:80@evil.example",
        "http://[::1].evil.example",
        "http://evil.example/http://127.0.0.1",
        "ftp://127.0.0.1",
        "http://127.0.0.1:notaport",
    ],
)
def test_only_https_or_a_loopback_host_is_an_issuer(url: str) -> None:
    from pydantic import ValidationError

    from api.settings import ApiSettings, issuer_url_allowed

    assert not issuer_url_allowed(url)
    base = {"bucket": "b", "table": "t", "cdn_base_url": "https://cdn.example", "api_key": None}
    with pytest.raises(ValidationError, match="IMGPIPE_JWT_ISSUER"):
        ApiSettings.model_validate({**base, "jwt_issuer": url, "jwt_audience": ["a"]})
    for good in (
        "https://issuer.example",
        "http://127.0.0.1:8080",
        "http://[::1]:1",
        "http://localhost",
    ):
        assert issuer_url_allowed(good), good
