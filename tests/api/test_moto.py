"""The API against moto over HTTP: real presigned POSTs and multipart uploads, real Dynamo
queries through processor.aws.dynamo, real SQS messages."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_repo
from api.settings import MiB
from processor.aws.dynamo import DynamoImageRepository, serialize, to_item
from processor.core.keys import image_id
from processor.core.messages import reprocess_message
from processor.core.record import ImageRecord, Status
from tests.api.conftest import API_KEY, make_record, stack_settings
from tests.api.test_images import assert_problem
from tests.aws import client

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("api-moto")]

AUTH = {"x-api-key": API_KEY}
CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "good"


def client_for(stack, **overrides: Any) -> TestClient:
    return TestClient(create_app(stack_settings(stack, **overrides)))


def put_records(stack, records: list[ImageRecord]) -> None:
    for start in range(0, len(records), 25):
        stack.dynamodb.batch_write_item(
            RequestItems={
                stack.table: [
                    {"PutRequest": {"Item": serialize(to_item(r))}}
                    for r in records[start : start + 25]
                ]
            }
        )


def with_bucket(record: ImageRecord, bucket: str) -> ImageRecord:
    return record.model_copy(update={"bucket": bucket})


# --- presigned POST --------------------------------------------------------------------------


def policy_allows(policy: dict[str, Any], bucket: str, fields: dict[str, str], size: int) -> bool:
    """What S3 checks of a browser POST, for the conditions this API uses.

    moto stores whatever is posted, policy or not, so the policy is checked here the way S3
    does: every condition holds, and every form field is covered by some condition.
    """
    if datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")) < datetime.now(UTC):
        return False
    form = {k.lower(): v for k, v in fields.items()} | {"bucket": bucket}
    covered = {"bucket"}
    for cond in policy["conditions"]:
        if isinstance(cond, dict):
            ((name, value),) = cond.items()
            name = name.lower()
            covered.add(name)
            if form.get(name) != value:
                return False
        elif cond[0] == "content-length-range":
            if not cond[1] <= size <= cond[2]:
                return False
        else:
            op, name, value = cond[0], cond[1].lstrip("$").lower(), cond[2]
            covered.add(name)
            actual = form.get(name)
            if actual is None:
                return False
            if op == "eq" and actual != value:
                return False
            if op == "starts-with" and not actual.startswith(value):
                return False
    exempt = {"policy", "x-amz-signature", "file"}
    return all(k in covered or k in exempt or k.startswith("x-ignore-") for k in form)


def test_presigned_post_is_accepted_and_its_policy_holds(stack) -> None:
    image = (CORPUS / "320x240.jpg").read_bytes()
    with client_for(stack, max_upload_bytes=5 * MiB) as api:
        r = api.post(
            "/uploads",
            json={"filename": "../My Photo.jpg", "content_type": "image/jpeg", "size": len(image)},
            headers=AUTH,
        )
    assert r.status_code == 200, r.text
    up = r.json()
    key, fields = up["key"], up["fields"]
    assert key.startswith("raw/") and key.endswith("/My-Photo.jpg")
    assert up["id"] == image_id(stack.bucket, key) and up["max_bytes"] == 5 * MiB

    # The policy S3 enforces: this bucket, exactly this key and type, 1..max bytes.
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"bucket": stack.bucket} in conditions
    assert {"key": key} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 1, 5 * MiB] in conditions
    assert not any(c[0] == "starts-with" for c in conditions if isinstance(c, list))

    assert policy_allows(policy, stack.bucket, fields, len(image))
    # What S3 would refuse: another key, another type, an empty or oversized file, a stray field.
    assert not policy_allows(policy, stack.bucket, {**fields, "key": "public/evil.jpg"}, 10)
    assert not policy_allows(policy, stack.bucket, {**fields, "Content-Type": "text/html"}, 10)
    assert not policy_allows(policy, stack.bucket, fields, 0)
    assert not policy_allows(policy, stack.bucket, fields, 5 * MiB + 1)
    assert not policy_allows(policy, stack.bucket, {**fields, "acl": "public-read"}, 10)
    assert not policy_allows(policy, "another-bucket", fields, 10)

    # WHEN the browser posts the form straight to S3 (moto over HTTP)
    posted = httpx.post(
        up["url"], data=fields, files={"file": ("My Photo.jpg", image, "image/jpeg")}
    )
    # THEN it is stored under the server's key with the declared type
    assert posted.status_code == 204, posted.text
    head = stack.s3.head_object(Bucket=stack.bucket, Key=key)
    assert head["ContentLength"] == len(image) and head["ContentType"] == "image/jpeg"
    assert stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read() == image


def test_declared_size_over_the_limit_is_413(stack) -> None:
    with client_for(stack, max_upload_bytes=MiB) as api:
        r = api.post(
            "/uploads",
            json={"filename": "a.png", "content_type": "image/png", "size": MiB + 1},
            headers=AUTH,
        )
    assert_problem(r, 413, "upload_too_large")


def test_unsupported_content_type_is_a_validation_problem(stack) -> None:
    with client_for(stack) as api:
        r = api.post(
            "/uploads", json={"filename": "a.svg", "content_type": "image/svg+xml"}, headers=AUTH
        )
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "content_type"]


# --- multipart -------------------------------------------------------------------------------


def start(api: TestClient, size: int, name: str = "pano.tif") -> dict[str, Any]:
    r = api.post(
        "/uploads/multipart",
        json={"filename": name, "content_type": "image/tiff", "size": size},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    return {**r.json(), "size": size}


def put_parts(
    api: TestClient, up: dict[str, Any], data: bytes, declared: int | None = None
) -> list[dict[str, Any]]:
    numbers = list(range(1, up["part_count"] + 1))
    r = api.post(
        f"/uploads/multipart/{up['upload_id']}/parts",
        json={"key": up["key"], "size": declared or up["size"], "part_numbers": numbers},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    urls = {p["part_number"]: p["url"] for p in r.json()["parts"]}
    assert sorted(urls) == numbers
    size = up["part_size"]
    done = []
    with httpx.Client() as http:
        for n in reversed(numbers):  # any order: parts are independent
            chunk = data[(n - 1) * size : n * size]
            put = http.put(urls[n], content=chunk)
            assert put.status_code == 200, put.text
            done.append({"part_number": n, "etag": put.headers["etag"]})
    return done


def test_multipart_upload_through_part_urls(stack) -> None:
    data = os.urandom(11 * MiB + 123)
    with client_for(stack, multipart_part_bytes=5 * MiB) as api:
        up = start(api, len(data))
        assert (up["part_size"], up["part_count"]) == (5 * MiB, 3)
        assert up["key"].startswith("raw/") and up["id"] == image_id(stack.bucket, up["key"])
        parts = put_parts(api, up, data)
        r = api.post(
            f"/uploads/multipart/{up['upload_id']}/complete",
            json={"key": up["key"], "parts": parts},
            headers=AUTH,
        )
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == len(data) and r.json()["id"] == up["id"]
    obj = stack.s3.get_object(Bucket=stack.bucket, Key=up["key"])
    assert obj["ContentType"] == "image/tiff"
    assert obj["Body"].read() == data


def test_multipart_total_over_the_limit_is_refused_and_aborted(stack) -> None:
    # GIVEN a client that declared 5 MiB, then 8 MiB, and puts 10 MiB: S3 refuses a part body
    # whose size differs from the signed Content-Length, moto does not check signatures, so
    # the completion check is what this test sees hold.
    data = os.urandom(10 * MiB)
    with client_for(stack, multipart_part_bytes=5 * MiB, max_upload_bytes=8 * MiB) as api:
        up = start(api, 5 * MiB)
        assert up["part_count"] == 1
        up["part_count"] = 2  # the client goes beyond what it was told
        parts = put_parts(api, up, data, declared=8 * MiB)
        r = api.post(
            f"/uploads/multipart/{up['upload_id']}/complete",
            json={"key": up["key"], "parts": parts},
            headers=AUTH,
        )
    # THEN nothing is stored and the parts are freed
    assert_problem(r, 413, "upload_too_large")
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=stack.bucket)
    assert stack.s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", []) == []


def test_part_urls_sign_their_length_and_stop_at_the_planned_count(stack) -> None:
    from urllib.parse import parse_qs, urlsplit

    size = 12 * MiB
    with client_for(stack, multipart_part_bytes=5 * MiB) as api:
        up = start(api, size)
        assert up["part_count"] == 3
        path = f"/uploads/multipart/{up['upload_id']}/parts"
        body = {"key": up["key"], "size": size, "part_numbers": [1, 2, 3]}
        r = api.post(path, json=body, headers=AUTH)
        assert r.status_code == 200, r.text
        parts = r.json()["parts"]
        assert [p["bytes"] for p in parts] == [5 * MiB, 5 * MiB, 2 * MiB]
        for part in parts:
            query = parse_qs(urlsplit(part["url"]).query)
            assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
            assert query["partNumber"] == [str(part["part_number"])]
        # THEN a part past the plan gets no URL, nor does a size over the limit
        r = api.post(path, json={**body, "part_numbers": [3, 4]}, headers=AUTH)
        assert "beyond the 3 parts" in assert_problem(r, 400, "bad_request")["detail"]
        r = api.post(path, json={**body, "size": 10**12}, headers=AUTH)
        assert_problem(r, 413, "upload_too_large")


def test_multipart_wrong_etag_is_400(stack) -> None:
    data = os.urandom(MiB)
    with client_for(stack) as api:
        up = start(api, len(data))
        put_parts(api, up, data)
        r = api.post(
            f"/uploads/multipart/{up['upload_id']}/complete",
            json={"key": up["key"], "parts": [{"part_number": 1, "etag": '"0000"'}]},
            headers=AUTH,
        )
    assert_problem(r, 400, "bad_request")


def test_multipart_abort(stack) -> None:
    with client_for(stack) as api:
        up = start(api, 10 * MiB)
        path = f"/uploads/multipart/{up['upload_id']}"
        assert api.delete(path, params={"key": up["key"]}, headers=AUTH).status_code == 204
        assert stack.s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", []) == []
        assert_problem(api.delete(path, params={"key": up["key"]}, headers=AUTH), 404, "not_found")
        r = api.post(
            f"{path}/complete",
            json={"key": up["key"], "parts": [{"part_number": 1, "etag": '"x"'}]},
            headers=AUTH,
        )
        assert_problem(r, 404, "not_found")


def test_multipart_refuses_keys_it_did_not_hand_out(stack) -> None:
    with client_for(stack) as api:
        up = start(api, 10 * MiB)
        for key in ("public/thumbs/x.jpg", "raw/other.jpg"):
            r = api.post(
                f"/uploads/multipart/{up['upload_id']}/parts",
                json={"key": key, "size": 10 * MiB, "part_numbers": [1]},
                headers=AUTH,
            )
            assert_problem(r, 400, "bad_request")


# --- records through the real repository ------------------------------------------------------


def spying_repo(stack) -> tuple[DynamoImageRepository, list[str]]:
    """The real repository on its own client, recording every DynamoDB operation it calls."""
    spy = client("dynamodb", stack.endpoint)
    calls: list[str] = []
    spy.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return DynamoImageRepository(spy, stack.table), calls


def test_pagination_over_dynamodb_has_no_duplicates_and_no_gaps(stack) -> None:
    # GIVEN 230 live, 40 deleted and 7 failed records in the table
    live = [with_bucket(make_record(i), stack.bucket) for i in range(230)]
    gone = [
        with_bucket(make_record(1000 + i, status=Status.deleted), stack.bucket) for i in range(40)
    ]
    failed = [
        with_bucket(make_record(2000 + i, status=Status.failed), stack.bucket) for i in range(7)
    ]
    put_records(stack, live + gone + failed)
    repo, calls = spying_repo(stack)
    app = create_app(stack_settings(stack))
    app.dependency_overrides[get_repo] = lambda: repo
    seen: list[str] = []
    with TestClient(app, headers={"x-api-key": API_KEY}) as api:  # writers see failed ones
        # WHEN every page is followed to the end
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 45}
            if cursor:
                params["cursor"] = cursor
            body = api.get("/images", params=params).json()
            seen += [i["id"] for i in body["data"]]
            cursor = body["next"]
            if not cursor:
                break
        only_failed = api.get("/images", params={"status": "failed"}).json()
    # THEN every live or failed image appears once, newest first, from index Queries alone
    expected = sorted(live + failed, key=lambda r: (r.created_at, r.id), reverse=True)
    assert seen == [r.id for r in expected]
    assert {i["id"] for i in only_failed["data"]} == {r.id for r in failed}
    assert calls and set(calls) == {"Query"}


def test_forged_cursor_never_reaches_dynamodb(stack) -> None:
    put_records(stack, [with_bucket(make_record(i), stack.bucket) for i in range(3)])
    with client_for(stack) as api:
        good = api.get("/images", params={"limit": 1}).json()["next"]
        body, mac = good.split(".")
        forged = base64.urlsafe_b64encode(b'{"id":{"S":"x"}}').decode().rstrip("=") + "." + mac
        assert_problem(api.get("/images", params={"cursor": forged}), 400, "invalid_cursor")
        assert api.get("/images", params={"cursor": good, "limit": 1}).status_code == 200


def test_read_image_from_dynamodb_with_etag(stack) -> None:
    rec = with_bucket(make_record(9), stack.bucket)
    put_records(stack, [rec])
    with client_for(stack) as api:
        r = api.get(f"/images/{rec.id}")
        assert r.status_code == 200 and r.json()["srcset"]["webp"].count("w,") == 1
        again = api.get(f"/images/{rec.id}", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        assert_problem(api.get(f"/images/{'c' * 26}"), 404, "not_found")


def test_delete_removes_objects_in_s3(stack) -> None:
    rec = with_bucket(make_record(5), stack.bucket)
    other = with_bucket(make_record(6), stack.bucket)
    put_records(stack, [rec, other])
    mine = [rec.source_key, *(f"public/{r.key}" for r in rec.renditions)]
    mine.append(f"public/thumbs/{rec.id}-0000000000.webp")  # an older content version
    theirs = [other.source_key, *(f"public/{r.key}" for r in other.renditions)]
    for key in mine + theirs:
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=b"x")

    with client_for(stack) as api:
        r = api.delete(f"/images/{rec.id}", headers=AUTH)

    assert r.status_code == 202, r.text
    assert sorted(r.json()["deleted_keys"]) == sorted(mine)
    left = [o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.bucket)["Contents"]]
    assert sorted(left) == sorted(theirs)


def test_reprocess_sends_the_message_to_sqs(stack) -> None:
    rec = with_bucket(make_record(8), stack.bucket)
    put_records(stack, [rec])
    with client_for(stack) as api:
        r = api.post(f"/images/{rec.id}/reprocess", headers=AUTH)
    assert r.status_code == 202, r.text
    got = stack.sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in got] == [reprocess_message(stack.bucket, rec.source_key)]
    assert got[0]["MessageId"] == r.json()["message_id"]
