"""Browser uploads with a JWT instead of the shared key, through the local stack over real HTTP.

The stack's own OpenID Connect issuer (cli/local/oidc.py) signs RS256 tokens and
publishes its keys; the API fetches them over HTTP and checks tokens as API Gateway's JWT
authoriser would (api/tokens.py). Uploads go to the embedded AWS through the presigned POST or
a multipart upload, the real processor records the token's subject as the uploader, and only
the uploader, or a token with the admin scope, or the key, may delete or reprocess the image.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.local.oidc import LOCAL_AUDIENCE, LocalIssuer
from cli.local.stack import LocalStack
from tests.cli.conftest import in_process_stack
from tests.conftest import BAD, GOOD

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "a-token-test-key-0123456789"
PHOTO = GOOD / "320x240.jpg"
ADMIN = "imgpipe/admin"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with in_process_stack("jwt", KEY) as started:
        yield started


@pytest.fixture
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    assert stack.urls is not None
    with httpx.Client(base_url=stack.urls.api, timeout=30) as client:
        yield client


def token_for(stack: LocalStack, subject: str, scope: str = "") -> str:
    """A token as any client gets one: OAuth 2.0 client credentials at the issuer, over HTTP."""
    assert stack.issuer is not None and stack.urls is not None and stack.urls.issuer
    form = {
        "grant_type": "client_credentials",
        "client_id": stack.issuer.client_id,
        "client_secret": stack.issuer.client_secret,
        "subject": subject,
        "scope": scope,
    }
    r = httpx.post(stack.urls.issuer + "/token", data=form, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"
    return str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def wait_processed(api: httpx.Client, iid: str, timeout_s: float = 90) -> dict[str, Any]:
    """The record once processing ended (done or failed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = api.get(f"/images/{iid}", headers={"x-api-key": KEY})
        if r.status_code == 200 and r.json()["status"] in {"done", "failed"}:
            record: dict[str, Any] = r.json()
            return record
        assert time.monotonic() < deadline, f"{iid} not processed in {timeout_s} s"
        time.sleep(0.3)


def wait_done(api: httpx.Client, iid: str) -> dict[str, Any]:
    record = wait_processed(api, iid)
    assert record["status"] == "done", record
    return record


def post_upload(
    api: httpx.Client, headers: dict[str, str], name: str = "cat.jpg", path: Path = PHOTO
) -> str:
    """POST /uploads, then the form straight to the bucket, as the gallery does."""
    data = path.read_bytes()
    r = api.post(
        "/uploads",
        json={"filename": name, "content_type": "image/jpeg", "size": len(data)},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    up = r.json()
    posted = httpx.post(
        up["url"], data=up["fields"], files={"file": (name, data, "image/jpeg")}, timeout=30
    )
    assert posted.status_code == 204, posted.text
    return str(up["id"])


def test_the_issuer_publishes_its_keys_and_answers_loopback_names_only(
    stack: LocalStack,
) -> None:
    assert stack.urls is not None and stack.urls.issuer is not None
    issuer = stack.urls.issuer
    assert issuer.startswith("http://127.0.0.1:")
    discovery = httpx.get(issuer + "/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = httpx.get(discovery["jwks_uri"]).json()["keys"]
    assert [k["kty"] for k in keys] == ["RSA"] and all("d" not in k for k in keys)
    # A DNS-rebinding page reaches the port under its own name: refused.
    rebound = httpx.get(issuer + "/.well-known/jwks.json", headers={"Host": "evil.example"})
    assert rebound.status_code == 421
    # Tokens only for the stack's client.
    assert stack.issuer is not None
    wrong = {
        "grant_type": "client_credentials",
        "client_id": stack.issuer.client_id,
        "client_secret": "not-the-secret",
    }
    r = httpx.post(issuer + "/token", data=wrong)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_a_token_upload_is_its_uploaders_to_change_and_nobody_elses(
    stack: LocalStack, api: httpx.Client
) -> None:
    ann, bob = f"ann-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    ann_token, bob_token = token_for(stack, ann), token_for(stack, bob)

    # GIVEN an image Ann uploaded with her token (presigned POST straight to the bucket)
    first = post_upload(api, bearer(ann_token))
    second = post_upload(api, bearer(ann_token), "dog.jpg")
    record = wait_done(api, first)
    wait_done(api, second)
    # THEN it is recorded as hers, and she sees it among her uploads, Bob does not
    assert record["uploader"] == ann
    mine = api.get("/images", params={"mine": "true"}, headers=bearer(ann_token)).json()
    assert {first, second} <= {i["id"] for i in mine["data"]}
    assert all(i["uploader"] == ann for i in mine["data"])
    theirs = api.get("/images", params={"mine": "true"}, headers=bearer(bob_token)).json()
    assert first not in {i["id"] for i in theirs["data"]}
    # ... the key names nobody, so it has no "mine"
    r = api.get("/images", params={"mine": "true"}, headers={"x-api-key": KEY})
    assert r.status_code == 400

    # WHEN Bob (a valid token, not the uploader) tries to change it: refused
    for method, path in (("DELETE", f"/images/{first}"), ("POST", f"/images/{first}/reprocess")):
        r = api.request(method, path, headers=bearer(bob_token))
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "forbidden"
    # ... Ann may reprocess and delete her own
    assert api.post(f"/images/{first}/reprocess", headers=bearer(ann_token)).status_code == 202
    assert api.delete(f"/images/{first}", headers=bearer(ann_token)).status_code == 202
    # ... and an admin token, or the key, may change anyone's
    admin = token_for(stack, f"ops-{uuid.uuid4().hex[:6]}", ADMIN)
    assert api.post(f"/images/{second}/reprocess", headers=bearer(admin)).status_code == 202
    assert api.delete(f"/images/{second}", headers={"x-api-key": KEY}).status_code == 202


def test_a_multipart_upload_with_a_token_names_its_uploader(
    stack: LocalStack, api: httpx.Client
) -> None:
    subject = f"cam-{uuid.uuid4().hex[:6]}"
    headers = bearer(token_for(stack, subject))
    data = PHOTO.read_bytes()
    start = api.post(
        "/uploads/multipart",
        json={"filename": "big.jpg", "content_type": "image/jpeg", "size": len(data)},
        headers=headers,
    )
    assert start.status_code == 201, start.text
    up = start.json()
    assert up["part_count"] == 1
    urls = api.post(
        f"/uploads/multipart/{up['upload_id']}/parts",
        json={"key": up["key"], "size": len(data), "part_numbers": [1]},
        headers=headers,
    ).json()["parts"]
    put = httpx.put(urls[0]["url"], content=data, timeout=30)
    assert put.status_code == 200, put.text
    done = api.post(
        f"/uploads/multipart/{up['upload_id']}/complete",
        json={"key": up["key"], "parts": [{"part_number": 1, "etag": put.headers["etag"]}]},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert wait_done(api, up["id"])["uploader"] == subject


def _forged(stack: LocalStack) -> str:
    """Signed with another key that claims the issuer's key id."""
    from joserfc.jwk import RSAKey

    assert stack.issuer is not None
    other = RSAKey.generate_key(2048, parameters={"kid": stack.issuer.kid})
    return stack.issuer.token("mallory", scopes=[ADMIN], key=other)


def _unknown_key(stack: LocalStack) -> str:
    from joserfc.jwk import RSAKey

    assert stack.issuer is not None
    other = RSAKey.generate_key(2048)
    other.ensure_kid()
    return stack.issuer.token("mallory", key=other)


def _other_issuer(stack: LocalStack) -> str:
    # A real issuer on loopback too, with its own keys: its tokens are not this stack's.
    elsewhere = LocalIssuer()
    try:
        elsewhere.start()
        return elsewhere.token("mallory", scopes=[ADMIN])
    finally:
        elsewhere.stop()


def _unsigned(stack: LocalStack) -> str:
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    assert stack.urls is not None
    claims = {"iss": stack.urls.issuer, "sub": "mallory", "aud": LOCAL_AUDIENCE, "exp": 2**31}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS: dict[str, Callable[[Any], str]] = {
    "expired": lambda s: s.issuer.token("ann", expires_in=-60),
    "wrong audience": lambda s: s.issuer.token("ann", audience="another-app"),
    "forged signature": _forged,
    "unknown key": _unknown_key,
    "another issuer": _other_issuer,
    "unsigned (alg none)": _unsigned,
    "not a JWT": lambda s: "not-a-token",
    # JSON's NaN and Infinity compare false with every time: they passed the exp check.
    "exp NaN": lambda s: s.issuer.token("ann", claims={"exp": float("nan")}),
    "exp Infinity": lambda s: s.issuer.token("ann", claims={"exp": float("inf")}),
    "iat NaN": lambda s: s.issuer.token("ann", claims={"iat": float("nan")}),
    # An object's keys were read as its audiences.
    "aud an object": lambda s: s.issuer.token("ann", claims={"aud": {LOCAL_AUDIENCE: 1}}),
    "sub a number": lambda s: s.issuer.token(None, claims={"sub": 123}),
    "sub a list": lambda s: s.issuer.token(None, claims={"sub": ["ann"]}),
    # A no-break space split "x imgpipe/admin" into the admin scope.
    "NBSP in scope": lambda s: s.issuer.token("ann", claims={"scope": f"x\u00a0{ADMIN}"}),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_bad_token_is_refused_and_gets_no_upload_url(
    stack: LocalStack, api: httpx.Client, kind: str
) -> None:
    token = BAD_TOKENS[kind](stack)
    r = api.post(
        "/uploads",
        json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 100},
        headers=bearer(token),
    )
    assert r.status_code == 401, (kind, r.text)
    problem = r.json()
    assert problem["code"] == "invalid_token", problem
    assert "url" not in problem and "fields" not in problem
    # The reason is named; no server-side address is.
    assert "127.0.0.1" not in problem["detail"] and "/work" not in problem["detail"]


def test_the_key_still_writes_alongside_tokens_and_names_no_uploader(
    stack: LocalStack, api: httpx.Client
) -> None:
    iid = post_upload(api, {"x-api-key": KEY})
    assert wait_done(api, iid)["uploader"] is None
    # Neither key nor token: refused, saying what is needed.
    r = api.post("/uploads", json={"filename": "a.jpg", "content_type": "image/jpeg", "size": 1})
    assert r.status_code == 401 and "bearer token" in r.json()["detail"]


def test_the_gallery_signs_in_with_the_secret_of_its_page_only(
    stack: LocalStack, api: httpx.Client
) -> None:
    page = api.get("/")
    assert KEY not in page.text  # nothing on the page writes by itself
    assert page.headers["cache-control"] == "no-store"  # it holds the sign-in secret
    assert '<meta name="imgpipe-token-url" content="/local/token">' in page.text
    secret = stack.gallery_secret
    assert f'<meta name="imgpipe-token-secret" content="{secret}">' in page.text
    # Without the page's secret (any other page, any process that did not read it): no token.
    for headers in ({}, {"x-imgpipe-gallery": "a-guessed-secret-0123456789"}):
        refused = api.get("/local/token", headers=headers)
        assert refused.status_code == 403, refused.text
        assert "access_token" not in refused.text
    token = api.get("/local/token", headers={"x-imgpipe-gallery": secret}).json()["access_token"]
    iid = post_upload(api, bearer(token))
    assert wait_done(api, iid)["uploader"] == "local-user"
    # On the embedded AWS the gallery is this machine's operator: it may change any image.
    other = post_upload(api, bearer(token_for(stack, "someone-else")))
    wait_done(api, other)
    assert api.delete(f"/images/{other}", headers=bearer(token)).status_code == 202


def test_a_token_sees_only_its_own_uploads_beyond_the_public_view(
    stack: LocalStack, api: httpx.Client
) -> None:
    ann, bob = f"ann-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    ann_token, bob_token = token_for(stack, ann), token_for(stack, bob)
    # GIVEN Ann's failed upload (a truncated JPEG) and her done one, and Bob's failed one
    damaged = BAD / "truncated.jpg"
    ann_failed = post_upload(api, bearer(ann_token), "ann-broken.jpg", damaged)
    ann_done = post_upload(api, bearer(ann_token), "ann-private-name.jpg")
    bob_failed = post_upload(api, bearer(bob_token), "bob-broken.jpg", damaged)
    assert wait_processed(api, ann_failed)["status"] == "failed"
    assert wait_processed(api, bob_failed)["status"] == "failed"
    wait_done(api, ann_done)

    # WHEN Bob lists failed images: his own only, never Ann's file, uploader or error
    r = api.get("/images", params={"status": "failed", "limit": 200}, headers=bearer(bob_token))
    assert r.status_code == 200, r.text
    ids = {i["id"] for i in r.json()["data"]}
    assert bob_failed in ids and ann_failed not in ids
    assert all(i["uploader"] == bob for i in r.json()["data"])
    assert ann not in r.text
    assert r.headers["cache-control"] == "private, no-cache"
    assert "authorization" in r.headers["vary"].lower()
    # ... nor reads it by its id, nor sees her done image's private fields
    assert api.get(f"/images/{ann_failed}", headers=bearer(bob_token)).status_code == 404
    public = api.get(f"/images/{ann_done}", headers=bearer(bob_token)).json()
    assert public["source_key"] is None and public["uploader"] is None
    everything = api.get("/images", params={"limit": 200}, headers=bearer(bob_token)).text
    assert "ann-private-name" not in everything and ann not in everything
    # ... and a token that names no subject sees nobody's
    nobody = bearer(stack.issuer.token(None))  # type: ignore[union-attr]
    assert api.get("/images", params={"status": "failed"}, headers=nobody).status_code == 403
    assert api.get(f"/images/{ann_failed}", headers=nobody).status_code == 404

    # THEN Ann sees her own, with its error; an admin sees both
    mine = api.get(f"/images/{ann_failed}", headers=bearer(ann_token)).json()
    assert mine["uploader"] == ann and mine["error"]["code"] == "corrupt_image"
    admin = bearer(token_for(stack, f"ops-{uuid.uuid4().hex[:6]}", ADMIN))
    r = api.get("/images", params={"status": "failed", "limit": 200}, headers=admin)
    assert {ann_failed, bob_failed} <= {i["id"] for i in r.json()["data"]}
