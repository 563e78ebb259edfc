"""Deleted means gone, through the local stack: the embedded AWS over real HTTP (versioned
bucket, the template's CloudFront distribution), the real processor and the CDN stand-in.

GIVEN a stack with one processed image whose renditions the CDN stand-in has served (cached)
WHEN the image is deleted through the API
THEN no version of the original or of any rendition stays in the bucket, the distribution
has an invalidation naming every rendition path, the CDN stops serving them, and the record
is a tombstone that anonymous readers cannot see. Deleting many images at once costs a few
invalidations (the flusher merges a window's erases into one), each within its bounds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.local.stack import LocalStack, StackOptions
from processor.core.keys import image_id
from processor.rules.invalidations import MAX_WILDCARDS_PER_FLUSH, covers
from tests.cli.conftest import aws_client, in_process_stack
from tests.conftest import GOOD

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

KEY = "a-deletion-test-key-0123456789"
PHOTO = GOOD / "320x240.jpg"
EXACT = 20


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Flushes fold past 20 exact paths here (the template's bound is 500): a bulk delete of a
    # dozen images then goes the folded way, a single delete's 6 paths stay exact.
    with in_process_stack("del", KEY, invalidation_exact_paths=EXACT) as started:
        yield started


def wait_for(check: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def upload(stack: LocalStack, client: httpx.Client, name: str) -> dict[str, Any]:
    assert stack.urls is not None and stack.resources is not None
    s3 = aws_client("s3", stack.urls.aws or "")
    key = f"raw/{uuid.uuid4().hex}/{name}"
    s3.put_object(Bucket=stack.resources.bucket, Key=key, Body=PHOTO.read_bytes())
    iid = image_id(stack.resources.bucket, key)

    def done() -> dict[str, Any] | None:
        r = client.get(f"/images/{iid}", headers={"x-api-key": KEY})
        return r.json() if r.status_code == 200 and r.json()["status"] == "done" else None

    record: dict[str, Any] = wait_for(done)
    return record


def versions_left(stack: LocalStack, prefix: str) -> list[str]:
    assert stack.urls is not None and stack.resources is not None
    s3 = aws_client("s3", stack.urls.aws or "")
    page = s3.list_object_versions(Bucket=stack.resources.bucket, Prefix=prefix)
    return [v["Key"] for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]


def invalidations(stack: LocalStack) -> dict[str, list[str]]:
    """Every invalidation of the stack's distribution: id -> its paths."""
    assert stack.urls is not None and stack.resources is not None
    cloudfront = aws_client("cloudfront", stack.urls.aws or "")
    distribution = stack.resources.distribution_id
    found: dict[str, list[str]] = {}
    for page in cloudfront.get_paginator("list_invalidations").paginate(
        DistributionId=distribution
    ):
        for item in page["InvalidationList"].get("Items", []):
            batch = cloudfront.get_invalidation(DistributionId=distribution, Id=item["Id"])
            found[item["Id"]] = batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    return found


def invalidated_paths(stack: LocalStack) -> set[str]:
    return {p for paths in invalidations(stack).values() for p in paths}


def test_the_local_bucket_is_versioned_and_has_the_templates_distribution(
    stack: LocalStack,
) -> None:
    assert stack.urls is not None and stack.resources is not None
    s3 = aws_client("s3", stack.urls.aws or "")
    assert s3.get_bucket_versioning(Bucket=stack.resources.bucket)["Status"] == "Enabled"
    cloudfront = aws_client("cloudfront", stack.urls.aws or "")
    config = cloudfront.get_distribution(Id=stack.resources.distribution_id)["Distribution"][
        "DistributionConfig"
    ]
    (origin,) = config["Origins"]["Items"]
    assert origin["OriginPath"] == "/public"
    assert origin["DomainName"].startswith(stack.resources.bucket)


def test_a_delete_leaves_no_version_invalidates_every_path_and_leaves_a_tombstone(
    stack: LocalStack,
) -> None:
    assert stack.urls is not None
    with httpx.Client(base_url=stack.urls.api, timeout=30) as client:
        record = upload(stack, client, "cat.jpg")
        urls = [r["url"] for r in record["renditions"]]
        assert urls and all(client.get(u).status_code == 200 for u in urls)  # now cached
        iid, source_key = record["id"], record["source_key"]

        # WHEN the image is deleted through the API
        r = client.delete(f"/images/{iid}", headers={"x-api-key": KEY})
        assert r.status_code == 202, r.text

        # THEN the CDN stops serving every rendition (the stand-in honours invalidations)
        wait_for(lambda: all(client.get(u).status_code == 404 for u in urls))
        paths = {u.removeprefix(stack.urls.cdn) for u in urls}
        assert paths <= invalidated_paths(stack)
        # ... no version of the original or of a rendition is left
        wait_for(lambda: not versions_left(stack, source_key))
        for folder in {p.split("/")[1] for p in paths}:
            assert versions_left(stack, f"public/{folder}/{iid}") == []
        # ... and the record is a tombstone: id, status, times; nothing of what it was
        tomb = client.get(f"/images/{iid}", headers={"x-api-key": KEY}).json()
        assert tomb["status"] == "deleted"
        assert tomb["source_key"] is None and tomb["width"] is None
        assert tomb["placeholder"] is None and tomb["dominant_color"] is None
        assert tomb["renditions"] == [] and tomb["format"] is None
        # ... that anonymous readers can neither read nor list
        assert client.get(f"/images/{iid}").status_code == 404
        assert client.get("/images", params={"status": "deleted"}).status_code == 401


def test_the_cdn_stand_in_serves_its_cached_copy_until_invalidated(stack: LocalStack) -> None:
    # GIVEN a rendition the stand-in has served, then removed from the bucket behind its back
    assert stack.urls is not None and stack.resources is not None
    with httpx.Client(base_url=stack.urls.api, timeout=30) as client:
        record = upload(stack, client, "dog.jpg")
        url = record["renditions"][0]["url"]
        first = client.get(url)
        assert first.status_code == 200
        s3 = aws_client("s3", stack.urls.aws or "")
        key = "public" + url.removeprefix(stack.urls.cdn)
        s3.delete_object(Bucket=stack.resources.bucket, Key=key)
        # THEN it is still served (as CloudFront would), until an invalidation names it
        again = client.get(url)
        assert again.status_code == 200 and again.content == first.content
        cloudfront = aws_client("cloudfront", stack.urls.aws or "")
        cloudfront.create_invalidation(
            DistributionId=stack.resources.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": [url.removeprefix(stack.urls.cdn)]},
                "CallerReference": uuid.uuid4().hex,
            },
        )
        assert client.get(url).status_code == 404


def test_a_bulk_delete_costs_a_few_invalidations_within_their_bounds(stack: LocalStack) -> None:
    # GIVEN 12 processed images whose renditions the CDN stand-in has served (cached)
    assert stack.urls is not None and stack.resources is not None
    count = 12
    s3 = aws_client("s3", stack.urls.aws or "")
    keys = [f"raw/{uuid.uuid4().hex}/bulk-{n}.jpg" for n in range(count)]
    for key in keys:
        s3.put_object(Bucket=stack.resources.bucket, Key=key, Body=PHOTO.read_bytes())
    ids = [image_id(stack.resources.bucket, key) for key in keys]
    with httpx.Client(base_url=stack.urls.api, timeout=30) as client:

        def done() -> list[dict[str, Any]] | None:
            records = [client.get(f"/images/{i}", headers={"x-api-key": KEY}) for i in ids]
            if all(r.status_code == 200 and r.json()["status"] == "done" for r in records):
                return [r.json() for r in records]
            return None

        records = wait_for(done, timeout_s=120)
        urls = [r["url"] for record in records for r in record["renditions"]]
        assert all(client.get(u).status_code == 200 for u in urls)  # now cached
        before = set(invalidations(stack))

        # WHEN all of them are deleted at once
        for iid in ids:
            r = client.delete(f"/images/{iid}", headers={"x-api-key": KEY})
            assert r.status_code == 202, r.text

        # THEN the CDN stops serving every rendition of every one of them
        wait_for(lambda: all(client.get(u).status_code == 404 for u in urls), timeout_s=90)
    # ... through fewer invalidations than images, each within the flush's bounds
    new = {i: paths for i, paths in invalidations(stack).items() if i not in before}
    assert 1 <= len(new) < count / 2, new
    assert any(p.endswith("*") for paths in new.values() for p in paths), new  # folded
    for paths in new.values():
        wildcards = [p for p in paths if p.endswith("*")]
        if wildcards:
            assert len(paths) <= MAX_WILDCARDS_PER_FLUSH, paths
        else:
            assert len(paths) <= EXACT, paths
    # ... that together cover every rendition path of every deleted image
    planned = [p for paths in new.values() for p in paths]
    for url in urls:
        assert covers(planned, url.removeprefix(stack.urls.cdn)), url


# --- the local stack's own guards (same stack) ------------------------------------------------


def test_the_api_answers_loopback_names_only(stack: LocalStack) -> None:
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: its Host header gives it away.
    assert stack.urls is not None
    port = stack.urls.api.rsplit(":", 1)[1]
    with httpx.Client(base_url=stack.urls.api, timeout=10) as client:
        for host in ("127.0.0.1", "localhost", f"127.0.0.1:{port}", f"localhost:{port}"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
            r = client.get("/", headers={"Host": host})
            assert r.status_code == 400, host
            assert r.json()["code"] == "invalid_host"
            assert KEY not in r.text  # the gallery page (and its key) is not served


def test_the_embedded_aws_answers_no_other_origins_preflight(stack: LocalStack) -> None:
    # moto's global CORS is off: a page on another origin cannot call the embedded AWS.
    assert stack.urls is not None and stack.urls.aws is not None
    preflight = {
        "Origin": "http://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-amz-target",
    }
    with httpx.Client(base_url=stack.urls.aws, timeout=10) as client:
        r = client.options("/", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        r = client.post("/", headers={"Origin": "http://evil.example"}, content=b"")
        assert "access-control-allow-origin" not in r.headers


def test_real_aws_with_the_public_default_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.local import LOCAL_API_KEY
    from cli.local.stack import StackError

    monkeypatch.delenv("IMGPIPE_API_KEY", raising=False)
    for key in (None, LOCAL_API_KEY):
        with pytest.raises(StackError, match="--real-aws needs a key of your own"):
            LocalStack(StackOptions(real_aws=True, api_port=0, cdn_port=0, api_key=key)).start()
