"""Private between users: what a bearer token may read, against moto over HTTP (the table's
real indexes through processor.aws.dynamo) with tokens from a real issuer on loopback.

GIVEN Ann's uploads (failed, processing, done) and Bob's failed one in the table
WHEN Bob, a token without a subject, an admin and anonymous callers read the listings and
single images
THEN Bob sees Ann's done image as the public does and nothing else of hers (no state but done,
no source key, uploader or error), Ann sees hers whole, a token without ``sub`` sees nobody's,
an admin and the key see everything; and every view read with credentials is private to
caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.local.oidc import LOCAL_AUDIENCE, LocalIssuer
from processor.aws.dynamo import serialize, to_item
from processor.core.record import ImageRecord, Status
from tests.api.conftest import API_KEY, make_record, stack_settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("api-moto")]

ADMIN = "imgpipe/admin"
PRIVATE = ("source_key", "uploader", "error")


@pytest.fixture
def world(stack: Any, issuer: LocalIssuer) -> Iterator[tuple[TestClient, dict[str, ImageRecord]]]:
    def owned(n: int, status: Status, uploader: str) -> ImageRecord:
        record = make_record(n, status=status)
        return record.model_copy(update={"uploader": uploader, "bucket": stack.bucket})

    records = {
        "ann_failed": owned(1, Status.failed, "ann"),
        "ann_processing": owned(2, Status.processing, "ann"),
        "ann_done": owned(3, Status.done, "ann"),
        "bob_failed": owned(4, Status.failed, "bob"),
    }
    for record in records.values():
        stack.dynamodb.put_item(TableName=stack.table, Item=serialize(to_item(record)))
    settings = stack_settings(stack, jwt_issuer=issuer.url, jwt_audience=[LOCAL_AUDIENCE])
    with TestClient(create_app(settings)) as client:
        yield client, records


def bearer(issuer: LocalIssuer, subject: str | None, *scopes: str) -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(subject, scopes=scopes)}"}


def listed(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/images", params={"limit": 200, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return {item["id"]: item for item in r.json()["data"]}


def test_a_token_sees_only_its_own_uploads_beyond_the_public_view(
    world: tuple[TestClient, dict[str, ImageRecord]], issuer: LocalIssuer
) -> None:
    client, records = world
    ids = {name: record.id for name, record in records.items()}
    bob = bearer(issuer, "bob")

    # Bob asks for failed images: his own only (Ann's file name and error stayed hers).
    failed = listed(client, bob, status="failed")
    assert set(failed) == {ids["bob_failed"]}
    assert failed[ids["bob_failed"]]["error"]["code"] == "corrupt_image"
    assert listed(client, bob, status="processing") == {}
    assert listed(client, bob, status="deleted") == {}
    # The default listing is the public one, with nothing private of Ann's.
    everything = listed(client, bob)
    assert ids["ann_done"] in everything
    assert ids["ann_failed"] not in everything and ids["ann_processing"] not in everything
    assert all(everything[ids["ann_done"]][field] is None for field in PRIVATE)
    # ... nor by id
    for name in ("ann_failed", "ann_processing"):
        assert client.get(f"/images/{ids[name]}", headers=bob).status_code == 404
    one = client.get(f"/images/{ids['ann_done']}", headers=bob).json()
    assert all(one[field] is None for field in PRIVATE)
    # ... while Ann sees hers whole
    ann = bearer(issuer, "ann")
    assert set(listed(client, ann, status="failed")) == {ids["ann_failed"]}
    mine = client.get(f"/images/{ids['ann_failed']}", headers=ann).json()
    assert (mine["uploader"], mine["error"]["code"]) == ("ann", "corrupt_image")
    assert mine["source_key"] == records["ann_failed"].source_key
    # ... and an admin token, or the key, sees everyone's
    for admin in (bearer(issuer, "ops", ADMIN), {"x-api-key": API_KEY}):
        failed = listed(client, admin, status="failed")
        assert {ids["ann_failed"], ids["bob_failed"]} <= set(failed)
        assert failed[ids["ann_failed"]]["uploader"] == "ann"


def test_a_token_without_a_subject_sees_nobodys_uploads(
    world: tuple[TestClient, dict[str, ImageRecord]], issuer: LocalIssuer
) -> None:
    client, records = world
    nobody = bearer(issuer, None)
    for status in ("failed", "processing", "deleted"):
        r = client.get("/images", params={"status": status}, headers=nobody)
        assert r.status_code == 403, r.text
    assert client.get(f"/images/{records['ann_failed'].id}", headers=nobody).status_code == 404
    for item in listed(client, nobody).values():
        assert all(item[field] is None for field in PRIVATE)


def test_views_read_with_credentials_are_private_to_caches(
    world: tuple[TestClient, dict[str, ImageRecord]], issuer: LocalIssuer
) -> None:
    client, records = world
    done = records["ann_done"].id
    for headers in (bearer(issuer, "ann"), {"x-api-key": API_KEY}):
        for path in ("/images", f"/images/{done}"):
            r = client.get(path, headers=headers)
            assert r.headers["cache-control"].startswith("private"), (path, r.headers)
            vary = {v.strip().lower() for v in r.headers["vary"].split(",")}
            assert {"authorization", "x-api-key"} <= vary
    # Anonymous readers get the public view, shareable, still keyed on the credentials.
    r = client.get(f"/images/{done}")
    assert r.headers["cache-control"] == "no-cache"
    assert "authorization" in r.headers["vary"].lower()
