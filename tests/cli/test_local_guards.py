"""What a running local stack refuses, over real HTTP: the requests a hostile web page, a
DNS-rebinding page or a careless client sends to its loopback ports.

GIVEN a local stack (embedded AWS, API and gallery, CDN stand-in, OIDC issuer) in this process
WHEN requests arrive with another host's name, from another site's page, at moto's management
API, with unbounded or malformed bodies, or for a stored file that is not a rendition
THEN each is refused with a 4xx before it does anything, and the stack's own clients (boto3,
the API, the gallery's origin) still work. tests/cli/test_attacks.py drives the same attacks
from a real browser.
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.local.stack import LocalStack, StackOptions
from tests.cli.conftest import aws_client, in_process_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

KEY = "a-guard-test-key-0123456789"
ADMIN = "imgpipe/admin"
SCAN = {
    # What an AWS SDK sends for a DynamoDB Scan (moto reads the service from the signature).
    "X-Amz-Target": "DynamoDB_20120810.Scan",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/dynamodb/"
    "aws4_request, SignedHeaders=host, Signature=0",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with in_process_stack("guard", KEY) as started:
        yield started


def urls(stack: LocalStack) -> Any:
    assert stack.urls is not None and stack.urls.aws is not None and stack.resources is not None
    return stack.urls


def raw(url: str, request: bytes, *, timeout_s: float = 10) -> int:
    """Bytes to a server, and the status of its answer: what no HTTP client library sends.
    The server may answer (and close) before it has read everything: that is the point."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as conn:
        try:
            conn.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def form_post(bucket: str, key: str, content_type: str = "text/html") -> dict[str, Any]:
    """A browser form's POST to a bucket: no signature at all (moto checks none)."""
    return {
        "data": {"key": key, "Content-Type": content_type},
        "files": {"file": ("x.html", b"<script>alert(1)</script>", content_type)},
    }


# --- the embedded AWS --------------------------------------------------------------------------


def test_the_embedded_aws_answers_loopback_names_only(stack: LocalStack) -> None:
    u = urls(stack)
    bucket, table = stack.resources.bucket, stack.resources.table  # type: ignore[union-attr]
    port = u.aws.rsplit(":", 1)[1]
    body = json.dumps({"TableName": table})
    with httpx.Client(base_url=u.aws, timeout=10) as client:
        # A rebinding page's fetch carries its own name: refused before moto sees it.
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
            r = client.post("/", headers={**SCAN, "Host": host}, content=body)
            assert r.status_code == 421, (host, r.text)
            assert "Items" not in r.text and "invalid_host" in r.text
        r = client.get("/raw/", headers={"Host": f"{bucket}.evil.example:{port}"})
        assert r.status_code == 421
        # Loopback names (and *.localhost, which browsers never resolve through DNS) pass.
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            assert client.post("/", headers={**SCAN, "Host": host}, content=body).status_code == 200
    assert "Items" in aws_client("dynamodb", u.aws).scan(TableName=table, Limit=1)


def test_the_embedded_aws_refuses_other_sites_pages(stack: LocalStack) -> None:
    u = urls(stack)
    bucket = stack.resources.bucket  # type: ignore[union-attr]
    s3 = aws_client("s3", u.aws)
    hostile = [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a data: URL
        {"Referer": "http://evil.example/attack.html"},
        # A page that suppressed its referrer: the browser still says where it came from.
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
        {"Sec-Fetch-Site": "same-site"},  # another port of this machine
    ]
    with httpx.Client(base_url=u.aws, timeout=10) as client:
        for n, headers in enumerate(hostile):
            key = f"public/thumbs/planted-{n}.html"
            r = client.post(f"/{bucket}", headers=headers, **form_post(bucket, key))
            assert r.status_code == 403, (headers, r.text)
            assert "cross_site" in r.text
            with pytest.raises(s3.exceptions.ClientError):
                s3.head_object(Bucket=bucket, Key=key)
            # ... a delete (DeleteObjects by a no-cors fetch) as well
            r = client.post(f"/{bucket}?delete", headers=headers, content=b"<Delete/>")
            assert r.status_code == 403
        # The gallery's own origin, under any loopback name, reaches moto (moto answers).
        gallery = u.api.replace("127.0.0.1", "localhost")
        for origin in (u.api, gallery):
            r = client.options(
                f"/{bucket}",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
            assert "cross_site" not in r.text, origin
        preflight = {"Origin": u.api, "Access-Control-Request-Method": "POST"}
        assert client.options(f"/{bucket}", headers=preflight).status_code == 200
    # Tools send none of those headers: boto3 (and the AWS CLI) work as before.
    s3.put_object(Bucket=bucket, Key="raw/tool/a.txt", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="raw/tool/a.txt")


def test_the_management_api_is_closed_to_everyone_but_the_stack(
    stack: LocalStack, moto_endpoint: str
) -> None:
    u = urls(stack)
    with httpx.Client(base_url=u.aws, timeout=10) as client:
        for method, path in (
            ("POST", "/moto-api/reset"),
            ("GET", "/moto-api/data.json"),
            ("GET", "/moto-api/"),
            ("POST", "/moto-api/seed?a=42"),
        ):
            r = client.request(method, path)
            assert r.status_code == 403, (path, r.text)
            assert "management_closed" in r.text
    # Nothing was reset: the stack's table and bucket are still there.
    assert aws_client("s3", u.aws).head_bucket(Bucket=stack.resources.bucket)  # type: ignore[union-attr]
    # The stack itself may reset its own (a separate embedded AWS here, not the shared one).
    from cli.local.aws import EmbeddedAws

    own = EmbeddedAws("127.0.0.1", 0)
    try:
        s3 = aws_client("s3", own.start())
        s3.create_bucket(Bucket=f"reset-{uuid.uuid4().hex[:8]}")
        own.reset()
        assert s3.list_buckets()["Buckets"] == []
    finally:
        own.stop()


def test_the_embedded_aws_bounds_bodies(stack: LocalStack) -> None:
    from cli.local.aws import EmbeddedAws

    u = urls(stack)
    bucket = stack.resources.bucket  # type: ignore[union-attr]
    head = f"PUT /{bucket}/raw/x HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
    assert raw(u.aws, head + b"Content-Length: -1\r\n\r\nabc") == 400
    assert raw(u.aws, head + b"Content-Length: 1e3\r\n\r\n") == 400
    big = b"Content-Length: 99999999999999\r\n\r\n"  # refused before a byte is read
    assert raw(u.aws, head + big) == 413
    # A chunked body is measured as it comes: past the bound, refused.
    small = EmbeddedAws("127.0.0.1", 0, max_body_bytes=1000)
    try:
        endpoint = small.start()
        aws_client("s3", endpoint).create_bucket(Bucket="bounded")

        def chunks(n: int) -> Iterator[bytes]:
            yield from (b"x" * 300 for _ in range(n))

        assert httpx.put(f"{endpoint}/bounded/big", content=chunks(4)).status_code == 413
        assert httpx.put(f"{endpoint}/bounded/small", content=chunks(3)).status_code == 200
        stored = aws_client("s3", endpoint).get_object(Bucket="bounded", Key="small")
        assert stored["ContentLength"] == 900
    finally:
        small.stop()


# --- the OIDC issuer ----------------------------------------------------------------------------


def test_the_issuer_reads_bounded_forms_and_answers_bad_headers_with_a_4xx(
    stack: LocalStack,
) -> None:
    issuer = stack.issuer
    assert issuer is not None and stack.urls is not None and stack.urls.issuer is not None
    form = (
        f"grant_type=client_credentials&client_id={issuer.client_id}"
        f"&client_secret={issuer.client_secret}"
    ).encode()
    head = b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    # -1 made the server read to the end of the stream, however long: 300 MiB once took the
    # stack from 136 to 428 MB. Here the valid form after it would have got a token.
    negative = head + b"Content-Length: -1\r\n\r\n" + form + b"&pad=" + b"a" * 100_000
    assert raw(stack.urls.issuer, negative) == 400
    cases = {
        b"Content-Length: abc\r\n\r\n": 400,
        b"Content-Length: 99999999999999999999999\r\n\r\n": 413,
        b"Content-Length: 3\r\n\r\n\xff\xfe\xfd": 400,  # not UTF-8
        b"\r\n": 411,  # no length at all
    }
    for tail, status in cases.items():
        assert raw(stack.urls.issuer, head + tail) == status, tail
    # ... and the issuer still answers a proper request
    good = head + f"Content-Length: {len(form)}\r\n\r\n".encode() + form
    assert raw(stack.urls.issuer, good) == 200


# --- the API and the CDN stand-in ------------------------------------------------------------


def test_the_api_and_the_cdn_bound_bodies(stack: LocalStack) -> None:
    u = urls(stack)
    for base, path in ((u.api, "/uploads"), (u.cdn, "/thumbs/x.webp")):
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        # Over API Gateway's 10 MB: refused before the body is read (the client sends none).
        assert raw(base, head + b"Content-Length: 20000000\r\n\r\n") == 413, base
        assert raw(base, head + b"Content-Length: -1\r\n\r\n") == 400, base
        # Chunked, with no length to judge by: read up to the bound, then refused.
        chunk = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"  # 1 MiB
        chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 11
        assert raw(base, chunked) == 413, base


def put_public(stack: LocalStack, key: str, body: bytes, content_type: str) -> None:
    s3 = aws_client("s3", urls(stack).aws)
    bucket = stack.resources.bucket  # type: ignore[union-attr]
    s3.put_object(Bucket=bucket, Key=f"public/{key}", Body=body, ContentType=content_type)


def test_the_cdn_serves_renditions_only_from_an_origin_of_its_own(stack: LocalStack) -> None:
    u = urls(stack)
    assert u.cdn != u.api  # another port: another origin than the API and the gallery
    # What any local process could put under public/: never served, so never run.
    page = b"<script>fetch('/local/token')</script>"
    planted = {
        "thumbs/planted.html": (page, "text/html"),
        "thumbs/planted.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'>" + page, "image/svg+xml"),
        "thumbs/planted.bin": (page, "application/octet-stream"),
        "thumbs/planted.jpg": (page, "text/html; charset=utf-8"),  # a rendition's name
        "thumbs/untyped.webp": (page, ""),
    }
    for key, (body, content_type) in planted.items():
        put_public(stack, key, body, content_type)
    put_public(stack, "thumbs/real.webp", b"RIFF....WEBP", "image/webp")
    with httpx.Client(base_url=u.cdn, timeout=10) as cdn:
        for key in planted:
            for method in ("GET", "HEAD"):
                r = cdn.request(method, f"/{key}")
                assert r.status_code == 404, (key, method, r.headers.get("content-type"))
                assert b"<script>" not in r.content
        r = cdn.get("/thumbs/real.webp")
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
        # CloudFront's response headers policy, as the template declares it
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        # The API's and the gallery's routes are not on the CDN's origin, nor its on theirs.
        for path in ("/", "/local/token", "/images", "/docs", "/gallery/gallery.js"):
            assert cdn.get(path).status_code == 404, path
        assert cdn.get("/thumbs/real.webp", headers={"Host": "evil.example"}).status_code == 400
    assert httpx.get(f"{u.api}/thumbs/real.webp").status_code == 404


def test_a_range_of_thousands_of_digits_is_a_416_not_a_500(stack: LocalStack) -> None:
    u = urls(stack)
    put_public(stack, "optimized/ranged.webp", b"0123456789" * 10, "image/webp")
    digits = "9" * 5000  # past Python's limit of 4,300 digits for reading a number
    with httpx.Client(base_url=u.cdn, timeout=10) as cdn:
        # A last position past any file's end: to the end of this one (a suffix: all of it).
        r = cdn.get("/optimized/ranged.webp", headers={"Range": f"bytes=90-{digits}"})
        assert r.status_code == 206 and r.content == b"0123456789"
        r = cdn.get("/optimized/ranged.webp", headers={"Range": f"bytes=-{digits}"})
        assert r.status_code == 206 and len(r.content) == 100
        # A first position past any file's end: unsatisfiable, without echoing the digits.
        r = cdn.get("/optimized/ranged.webp", headers={"Range": f"bytes={digits}-"})
        assert r.status_code == 416 and r.headers["content-range"] == "bytes */100"
        assert digits not in r.text


# --- --real-aws ---------------------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_real_aws_never_mints_admin_tokens(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Real AWS" is moto here (boto3 reads AWS_ENDPOINT_URL), with the deployed resources.
    name = f"real-{uuid.uuid4().hex[:8]}"
    aws_client("s3", moto_endpoint).create_bucket(Bucket=name)
    queue = aws_client("sqs", moto_endpoint).create_queue(QueueName=name)["QueueUrl"]
    for variable, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "IMGPIPE_BUCKET": name,
        "IMGPIPE_TABLE": name,
        "IMGPIPE_QUEUE_URL": queue,
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("IMGPIPE_CDN_BASE_URL", raising=False)
    stack = LocalStack(
        StackOptions(
            real_aws=True, api_port=0, cdn_port=0, worker=False, api_key="a-real-aws-key-0123456"
        )
    )
    try:
        started = stack.start()
        issuer = stack.issuer
        assert issuer is not None and started.issuer is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": issuer.client_id,
            "client_secret": issuer.client_secret,
            "scope": ADMIN,
        }
        r = httpx.post(started.issuer + "/token", data=form, timeout=10)
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
        # The gallery's sign-in: its own uploads only, never every image of the deployment.
        r = httpx.get(
            started.api + "/local/token", headers={"x-imgpipe-gallery": stack.gallery_secret}
        )
        assert r.status_code == 200, r.text
        assert ADMIN not in str(_claims(r.json()["access_token"]).get("scope", ""))
    finally:
        stack.stop()
