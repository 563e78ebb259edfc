"""/images against in-memory fakes: listing, pagination, cursors, ETags, delete, reprocess."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from processor.core.errors import ConfigError, TransientError
from processor.core.messages import forget_message, reprocess_message
from processor.core.record import ImageRecord, Status
from tests.api.conftest import BUCKET, CDN, make_record, make_settings, wire
from tests.fakes.api import FakeQueue, FakeStore
from tests.fakes.records import FakeReader

pytestmark = pytest.mark.unit


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:imgpipe:problem:{code}"
    assert body["title"]
    return body


# --- listing ---------------------------------------------------------------------------------


def test_list_is_newest_first_with_absolute_urls(client: TestClient, reader: FakeReader) -> None:
    body = client.get("/images").json()
    assert body["count"] == 5 and body["next"] is None
    assert [i["id"] for i in body["data"]] == [make_record(i).id for i in (4, 3, 2, 1, 0)]
    first = body["data"][0]
    assert (first["width"], first["height"]) == (4000, 3000)
    assert first["renditions"] and all(
        r["url"].startswith(CDN + "/thumbs/") or r["url"].startswith(CDN + "/optimized/")
        for r in first["renditions"]
    )


def test_list_hides_deleted_unless_asked(writer: TestClient, reader: FakeReader) -> None:
    gone = make_record(100, status=Status.deleted)
    reader.add(gone)
    ids = [i["id"] for i in writer.get("/images").json()["data"]]
    assert gone.id not in ids
    only = writer.get("/images", params={"status": "deleted"}).json()["data"]
    assert [i["id"] for i in only] == [gone.id]
    assert only[0]["renditions"] == [] and only[0]["srcset"] == {} and only[0]["src"] is None


def test_failed_image_carries_its_error(writer: TestClient, reader: FakeReader) -> None:
    bad = make_record(50, status=Status.failed)
    reader.add(bad)
    body = writer.get(f"/images/{bad.id}").json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": "corrupt_image", "message": "the pixels do not decode"}


@pytest.mark.parametrize("limit", [0, 201, -1])
def test_limit_out_of_range_is_a_validation_problem(client: TestClient, limit: int) -> None:
    body = assert_problem(client.get("/images", params={"limit": limit}), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", "limit"]


def test_unknown_status_is_a_validation_problem(client: TestClient) -> None:
    assert_problem(client.get("/images", params={"status": "nope"}), 422, "validation_error")


def walk(client: TestClient, params: dict[str, str | int]) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        r = client.get("/images", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == len(body["data"])
        ids += [i["id"] for i in body["data"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return ids, pages


@pytest.mark.parametrize("limit", [1, 37, 200])
def test_pagination_over_hundreds_has_no_duplicates_and_no_gaps(limit: int) -> None:
    # GIVEN 450 live images, interleaved with failed and deleted ones
    records = [make_record(i) for i in range(450)]
    records += [make_record(1000 + i, status=Status.deleted) for i in range(30)]
    reader = FakeReader(records)
    app = wire(create_app(make_settings()), reader, FakeStore(), FakeQueue())
    with TestClient(app) as client:
        # WHEN every page is followed to the end
        ids, pages = walk(client, {"limit": limit})
    # THEN each live image appears exactly once, newest first
    expected = [r.id for r in sorted(records[:450], key=lambda r: r.created_at, reverse=True)]
    assert ids == expected
    assert len(set(ids)) == 450
    assert pages == -(-450 // limit)


def test_pagination_by_status(writer: TestClient, reader: FakeReader) -> None:
    reader.add(*[make_record(200 + i, status=Status.failed) for i in range(25)])
    ids, pages = walk(writer, {"status": "failed", "limit": 10})
    assert len(ids) == len(set(ids)) == 25 and pages == 3


def test_default_limit_is_50(client: TestClient, reader: FakeReader) -> None:
    reader.add(*[make_record(300 + i) for i in range(60)])
    body = client.get("/images").json()
    assert body["count"] == 50 and body["next"]
    assert reader.calls[-1]["limit"] == 50


def scored(n: int, worst: float | None) -> ImageRecord:
    """The n-th image with its renditions scored: the worst one ``worst``, the others above."""
    record = make_record(n)
    scores = [worst, None if worst is None else worst + 5] * (len(record.renditions) // 2)
    pairs = zip(record.renditions, scores, strict=True)
    renditions = [r.model_copy(update={"score": s}) for r, s in pairs]
    return record.model_copy(update={"renditions": renditions})


def test_renditions_carry_their_score(client: TestClient, reader: FakeReader) -> None:
    reader.add(scored(600, 61.5))
    body = client.get(f"/images/{scored(600, 61.5).id}").json()
    assert sorted(r["score"] for r in body["renditions"]) == [61.5, 61.5, 66.5, 66.5]
    unscored = client.get(f"/images/{make_record(1).id}").json()
    assert {r["score"] for r in unscored["renditions"]} == {None}


def test_the_worst_renditions_are_found_by_max_score_page_by_page(
    writer: TestClient, reader: FakeReader
) -> None:
    # GIVEN 30 scored images (worst renditions from 50 to 79) beside 5 never scored
    reader.add(*[scored(700 + i, 50.0 + i) for i in range(30)])
    # WHEN the images with a rendition at or below 59 are listed 4 at a time
    ids, pages = walk(writer, {"max_score": 59, "limit": 4})
    # THEN exactly the ten worst, newest first, once each, over as many pages as they need
    assert ids == [scored(700 + i, 0).id for i in reversed(range(10))]
    assert pages == 3
    # and min_score keeps the images whose every rendition reaches it; both make a band
    good, _ = walk(writer, {"min_score": 75})
    assert good == [scored(700 + i, 0).id for i in reversed(range(25, 30))]
    band, _ = walk(writer, {"min_score": 60, "max_score": 61})
    assert band == [scored(711, 0).id, scored(710, 0).id]


def test_a_cursor_belongs_to_its_score_filter(writer: TestClient, reader: FakeReader) -> None:
    reader.add(*[scored(800 + i, 50.0 + i) for i in range(10)])
    cursor = writer.get("/images", params={"max_score": 70, "limit": 2}).json()["next"]
    assert cursor
    r = writer.get("/images", params={"max_score": 60, "limit": 2, "cursor": cursor})
    assert_problem(r, 400, "invalid_cursor")
    r = writer.get("/images", params={"limit": 2, "cursor": cursor})
    assert_problem(r, 400, "invalid_cursor")


def test_an_empty_or_impossible_score_range_is_refused(client: TestClient) -> None:
    body = assert_problem(
        client.get("/images", params={"min_score": 80, "max_score": 70}), 400, "bad_request"
    )
    assert "min_score" in body["detail"]
    assert_problem(client.get("/images", params={"max_score": 101}), 422, "validation_error")


# --- cursors ---------------------------------------------------------------------------------


def first_cursor(client: TestClient, reader: FakeReader, **params: str) -> str:
    reader.add(*[make_record(400 + i) for i in range(10)])
    reader.add(*[make_record(500 + i, status=Status.failed) for i in range(10)])
    cursor = client.get("/images", params={"limit": 3, **params}).json()["next"]
    assert cursor
    return cursor


@pytest.mark.parametrize(
    "forged",
    [
        "garbage",
        "",
        "a.b.c",
        "eyJpZCI6ICJ4In0.AAAAAAAAAAAAAAAAAAAAAA",
        "%%%.%%%",
        "x" * 2048,
    ],
)
def test_forged_cursor_is_a_400_problem(
    client: TestClient, reader: FakeReader, forged: str
) -> None:
    r = client.get("/images", params={"cursor": forged})
    if forged == "":
        assert r.status_code == 200  # an empty cursor is the first page
        return
    assert_problem(r, 400, "invalid_cursor")
    assert reader.calls == []  # never reaches the store


def test_tampered_cursor_is_refused(client: TestClient, reader: FakeReader) -> None:
    import base64

    cursor = first_cursor(client, reader)
    body, mac = cursor.split(".")
    position = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    position["sort_key"] = "9999-12-31T00:00:00Z#zzzz"  # try to jump elsewhere
    payload = json.dumps(position, sort_keys=True, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + mac
    calls = len(reader.calls)
    assert_problem(client.get("/images", params={"cursor": forged}), 400, "invalid_cursor")
    assert len(reader.calls) == calls


def test_cursor_of_another_listing_is_refused(writer: TestClient, reader: FakeReader) -> None:
    cursor = first_cursor(writer, reader, status="failed")
    assert writer.get("/images", params={"cursor": cursor, "status": "failed"}).status_code == 200
    assert_problem(writer.get("/images", params={"cursor": cursor}), 400, "invalid_cursor")
    r = writer.get("/images", params={"cursor": cursor, "status": "done"})
    assert_problem(r, 400, "invalid_cursor")


def test_cursor_of_another_deployment_is_refused(client: TestClient, reader: FakeReader) -> None:
    # GIVEN a cursor signed by a deployment with another secret
    other = wire(
        create_app(make_settings(cursor_secret="another-secret-0123456789")),
        reader,
        FakeStore(),
        FakeQueue(),
    )
    with TestClient(other) as other_client:
        foreign = first_cursor(other_client, reader)
    # THEN this deployment refuses it
    assert_problem(client.get("/images", params={"cursor": foreign}), 400, "invalid_cursor")


# --- one image, ETag -------------------------------------------------------------------------


def test_read_image_has_srcset_src_and_etag(writer: TestClient) -> None:
    rec = make_record(3)
    r = writer.get(f"/images/{rec.id}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == rec.id and body["status"] == "done"
    assert body["source_key"] == rec.source_key
    assert (body["format"], body["bytes"]) == ("jpeg", 1_000_003)
    assert body["dominant_color"] == "#8a7f72" and body["placeholder"]
    thumb = f"{CDN}/thumbs/{rec.id}-1a2b3c4d5e"
    big = f"{CDN}/optimized/{rec.id}-1a2b3c4d5e"
    assert body["srcset"] == {
        "jpeg": f"{thumb}.jpg 320w, {big}.jpg 2048w",
        "webp": f"{thumb}.webp 320w, {big}.webp 2048w",
    }
    assert list(body["srcset"]) == ["webp", "jpeg"]  # the order a <picture> offers them in
    assert body["src"] == f"{big}.jpg"
    assert r.headers["etag"].startswith('"')
    # Read with the key: for its holder only, and keyed on the credential headers by caches.
    assert r.headers["cache-control"] == "private, no-cache"
    assert {v.strip().lower() for v in r.headers["vary"].split(",")} >= {
        "authorization",
        "x-api-key",
    }


def test_if_none_match_gives_304(client: TestClient, reader: FakeReader) -> None:
    rec = make_record(2)
    etag = client.get(f"/images/{rec.id}").headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = client.get(f"/images/{rec.id}", headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b"" and r.headers["etag"] == etag
    assert client.get(f"/images/{rec.id}", headers={"If-None-Match": '"x"'}).status_code == 200
    # WHEN the record changes THEN the ETag changes and the old one no longer matches
    reader.add(rec.model_copy(update={"updated_at": "2030-01-01T00:00:00Z"}))
    r = client.get(f"/images/{rec.id}", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag


def test_unknown_image_is_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get(f"/images/{'a' * 26}"), 404, "not_found")
    assert body["instance"] == f"/images/{'a' * 26}"


def test_malformed_id_is_a_validation_problem(client: TestClient) -> None:
    assert_problem(client.get("/images/NOT-AN-ID"), 422, "validation_error")


def test_processing_image_has_no_dimensions_yet(writer: TestClient, reader: FakeReader) -> None:
    rec = make_record(60, status=Status.processing)
    reader.add(rec)
    body = writer.get(f"/images/{rec.id}").json()
    assert body["status"] == "processing"
    assert body["width"] is None and body["renditions"] == [] and body["src"] is None


# --- who may read what -----------------------------------------------------------------------


def test_anonymous_readers_see_done_images_only(client: TestClient, reader: FakeReader) -> None:
    # GIVEN one image in every state
    others = {
        status: make_record(700 + n, status=status)
        for n, status in enumerate((Status.processing, Status.failed, Status.deleted))
    }
    reader.add(*others.values())
    # THEN without the key only done images are listed, without their keys in the bucket
    listed = client.get("/images", params={"limit": 200}).json()["data"]
    assert {i["status"] for i in listed} == {"done"} and len(listed) == 5
    assert all(i["source_key"] is None and i["error"] is None for i in listed)
    assert client.get("/images", params={"status": "done"}).json()["count"] == 5
    # ... another status is refused, and an image that is not done does not exist for them
    for status, record in others.items():
        r = client.get("/images", params={"status": status.value})
        assert "needs write authorisation" in assert_problem(r, 401, "unauthorized")["detail"]
        assert_problem(client.get(f"/images/{record.id}"), 404, "not_found")
    one = client.get(f"/images/{make_record(1).id}").json()
    assert one["status"] == "done" and one["source_key"] is None and one["renditions"]


def test_writers_see_every_status_with_source_keys_and_errors(
    writer: TestClient, reader: FakeReader
) -> None:
    bad = make_record(800, status=Status.failed)
    reader.add(bad)
    body = writer.get(f"/images/{bad.id}").json()
    assert body["source_key"] == bad.source_key and body["error"]["code"] == "corrupt_image"
    assert writer.get("/images", params={"status": "failed"}).json()["count"] == 1
    listed = writer.get("/images").json()["data"]
    assert all(i["source_key"] for i in listed)


def test_a_wrong_key_reads_as_anonymous(client: TestClient, reader: FakeReader) -> None:
    bad = make_record(801, status=Status.failed)
    reader.add(bad)
    r = client.get(f"/images/{bad.id}", headers={"x-api-key": "not-the-key-0123456789"})
    assert_problem(r, 404, "not_found")


def gateway_event(
    method: str, path: str, authorizer: dict[str, Any] | None, body: Any = None
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event, as API Gateway sends it after its authoriser ran."""
    context: dict[str, Any] = {
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1"},
        "stage": "$default",
        "requestId": "r",
        "routeKey": f"{method} /{{proxy+}}",
        "accountId": "123456789012",
        "apiId": "api",
        "timeEpoch": 0,
        "domainName": "api.example",
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": context["routeKey"],
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example"},
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    return event


def gateway_handler(reader: FakeReader, **settings: Any) -> Any:
    from mangum import Mangum

    settings_ = make_settings(api_key=None, auth_mode="gateway", **settings)
    app = create_app(settings_, behind_gateway=True)
    return Mangum(wire(app, reader, FakeStore(), FakeQueue()), lifespan="off")


@pytest.mark.parametrize(
    ("authorizer", "reads_public", "status"),
    [
        (None, True, 404),  # no authoriser's word: nobody
        ({"lambda": {"writer": "false"}}, True, 404),  # the read authoriser, no key
        ({"lambda": {"writer": "true"}}, True, 200),  # the read authoriser, the key matched
        ({"jwt": {"claims": {"sub": "u2"}, "scopes": None}}, True, 404),  # someone else's
        ({"jwt": {"claims": {"sub": "u1"}, "scopes": None}}, True, 200),  # its uploader
        ({"jwt": {"claims": {"sub": "u2", "scope": "imgpipe/admin"}}}, True, 200),  # an admin
        # NBSP is no separator: "x\u00a0imgpipe/admin" is one malformed scope, not the admin's
        ({"jwt": {"claims": {"sub": "u2", "scope": "x\u00a0imgpipe/admin"}}}, True, 401),
        (None, False, 401),  # reads are private and no authoriser vouched for the caller
    ],
)
def test_gateway_mode_takes_the_readers_rights_from_the_authoriser(
    reader: FakeReader, authorizer: dict[str, Any] | None, reads_public: bool, status: int
) -> None:
    bad = make_record(802, status=Status.failed).model_copy(update={"uploader": "u1"})
    reader.add(bad)
    handler = gateway_handler(reader, reads_public=reads_public)
    response = handler(gateway_event("GET", f"/images/{bad.id}", authorizer), None)
    assert response["statusCode"] == status, response


# --- writes ----------------------------------------------------------------------------------


def test_delete_removes_source_and_every_rendition_version(
    client: TestClient, store: FakeStore, auth: dict[str, str]
) -> None:
    rec = make_record(1)
    other = make_record(2)
    current = [rec.source_key] + [f"public/{r.key}" for r in rec.renditions]
    older = [f"public/thumbs/{rec.id}-0000000000.webp", f"public/optimized/{rec.id}-0000000000.jpg"]
    untouched = [other.source_key] + [f"public/{r.key}" for r in other.renditions]
    for key in current + older + untouched:
        store.objects[key] = b"x"

    r = client.delete(f"/images/{rec.id}", headers=auth)

    assert r.status_code == 202, r.text
    assert sorted(r.json()["deleted_keys"]) == sorted(current + older)
    assert sorted(store.objects) == sorted(untouched)


def test_delete_of_an_image_read_in_place_keeps_its_original_and_asks_the_processor(
    client: TestClient,
    store: FakeStore,
    reader: FakeReader,
    queue: FakeQueue,
    auth: dict[str, str],
) -> None:
    # GIVEN an image backfilled from another bucket: its original is not the pipeline's
    rec = make_record(80).model_copy(update={"bucket": "photos", "source_key": "2019/cat.jpg"})
    reader.add(rec)
    renditions = [f"public/{r.key}" for r in rec.renditions]
    for key in ["2019/cat.jpg", *renditions]:
        store.objects[key] = b"x"

    r = client.delete(f"/images/{rec.id}", headers=auth)

    # THEN its renditions go, the original stays, and the processor is told to forget it
    assert r.status_code == 202, r.text
    assert sorted(r.json()["deleted_keys"]) == sorted(renditions)
    assert sorted(store.objects) == ["2019/cat.jpg"]
    assert queue.sent == [forget_message("photos", "2019/cat.jpg")]


def test_delete_unknown_is_404(client: TestClient, auth: dict[str, str]) -> None:
    assert_problem(client.delete(f"/images/{'b' * 26}", headers=auth), 404, "not_found")


def test_reprocess_queues_the_projects_message(
    client: TestClient, queue: FakeQueue, auth: dict[str, str]
) -> None:
    rec = make_record(4)
    r = client.post(f"/images/{rec.id}/reprocess", headers=auth)
    assert r.status_code == 202
    assert r.json() == {"id": rec.id, "message_id": "msg-1"}
    assert queue.sent == [reprocess_message(BUCKET, rec.source_key)]


def test_reprocess_of_deleted_image_conflicts(
    client: TestClient, reader: FakeReader, queue: FakeQueue, auth: dict[str, str]
) -> None:
    gone = make_record(70, status=Status.deleted)
    reader.add(gone)
    assert_problem(client.post(f"/images/{gone.id}/reprocess", headers=auth), 409, "conflict")
    assert queue.sent == []


def test_reprocess_without_queue_is_503(reader: FakeReader, auth: dict[str, str]) -> None:
    app = create_app(make_settings(queue_url=None))
    from api.deps import get_repo

    app.dependency_overrides[get_repo] = lambda: reader
    with TestClient(app) as client:
        r = client.post(f"/images/{make_record(1).id}/reprocess", headers=auth)
    assert "IMGPIPE_QUEUE_URL" in assert_problem(r, 503, "service_unavailable")["detail"]


# --- auth ------------------------------------------------------------------------------------

WRITES = [
    ("DELETE", f"/images/{make_record(1).id}", None),
    ("POST", f"/images/{make_record(1).id}/reprocess", None),
    ("POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg"}),
    ("POST", "/uploads/multipart", {"filename": "a.jpg", "content_type": "image/jpeg", "size": 9}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize("key", [None, "wrong-key", ""])
def test_writes_need_the_api_key(
    client: TestClient, store: FakeStore, queue: FakeQueue, method, path, body, key
) -> None:
    headers = {} if key is None else {"x-api-key": key}
    r = client.request(method, path, json=body, headers=headers)
    assert_problem(r, 401, "unauthorized")
    assert store.uploads == {} and queue.sent == []


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_are_refused_when_no_key_is_configured(
    reader: FakeReader, method, path, body
) -> None:
    app = wire(create_app(make_settings(api_key=None)), reader, FakeStore(), FakeQueue())
    with TestClient(app) as client:
        r = client.request(method, path, json=body, headers={"x-api-key": "anything-at-all"})
    assert "no API key" in assert_problem(r, 401, "unauthorized")["detail"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_gateway_mode_trusts_the_authoriser(reader: FakeReader, method, path, body) -> None:
    handler = gateway_handler(reader)
    writer = {"lambda": {"writer": "true"}}
    response = handler(gateway_event(method, path, writer, body), None)
    assert response["statusCode"] in (200, 201, 202), response
    # A request no authoriser vouched for changes nothing.
    for authorizer in ({"lambda": {"writer": "false"}}, None):
        nobody = handler(gateway_event(method, path, authorizer, body), None)
        assert nobody["statusCode"] == 401, nobody


def test_gateway_mode_outside_api_gateway_refuses_to_start() -> None:
    # Run under uvicorn (or any server but the Lambda handler) no authoriser checks anyone:
    # every caller would be an admin, and anyone could upload.
    settings = make_settings(api_key=None, auth_mode="gateway")
    with pytest.raises(ConfigError, match="IMGPIPE_AUTH_MODE=gateway"):
        create_app(settings)
    app = create_app(settings, behind_gateway=True)
    assert "ApiKey" not in json.dumps(app.openapi().get("components", {}))


def test_private_reads_need_the_key(reader: FakeReader, auth: dict[str, str]) -> None:
    app = wire(create_app(make_settings(reads_public=False)), reader, FakeStore(), FakeQueue())
    with TestClient(app) as client:
        assert_problem(client.get("/images"), 401, "unauthorized")
        assert_problem(client.get(f"/images/{make_record(1).id}"), 401, "unauthorized")
        assert client.get("/images", headers=auth).status_code == 200
        assert client.get("/healthz").status_code == 200
    spec = app.openapi()
    assert spec["paths"]["/images"]["get"]["security"] == [{"ApiKey": []}, {"Bearer": []}]


def test_public_reads_declare_no_security(app) -> None:
    spec = app.openapi()
    assert "security" not in spec["paths"]["/images"]["get"]
    assert spec["paths"]["/uploads"]["post"]["security"] == [{"ApiKey": []}, {"Bearer": []}]


# --- errors, CORS, docs ----------------------------------------------------------------------


class BrokenReader(FakeReader):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def get(self, image_id: str):
        raise self.error

    def list_images(self, **kwargs):
        raise self.error


def test_backend_throttling_is_503_with_retry_after() -> None:
    reader = BrokenReader(TransientError("ProvisionedThroughputExceeded"))
    app = wire(create_app(make_settings()), reader, FakeStore(), FakeQueue())
    with TestClient(app) as client:
        r = client.get("/images")
    body = assert_problem(r, 503, "transient_error")
    assert r.headers["retry-after"] == "1"
    assert "Provisioned" not in body["detail"]  # internals stay in the log


def test_unexpected_error_is_500_problem_without_internals() -> None:
    reader = BrokenReader(RuntimeError("secret internal detail"))
    app = wire(create_app(make_settings()), reader, FakeStore(), FakeQueue())
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get(f"/images/{make_record(1).id}")
    body = assert_problem(r, 500, "internal_error")
    assert "secret" not in r.text and body["detail"] == "internal error"


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/nope"), 404, "not_found")
    r = client.put("/images")
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET"
    # Reads and writes of one path live in two routers: Allow still names them all.
    r = client.put(f"/images/{make_record(1).id}")
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "DELETE, GET"


def test_bad_json_body_is_a_validation_problem(client: TestClient, auth) -> None:
    r = client.post(
        "/uploads", content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert_problem(r, 422, "validation_error")


def test_cors_from_settings(reader: FakeReader) -> None:
    app = wire(
        create_app(make_settings(cors_origins="https://app.example, https://admin.example")),
        reader,
        FakeStore(),
        FakeQueue(),
    )
    with TestClient(app) as client:
        pre = client.options(
            "/uploads",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
        got = client.get("/images", headers={"Origin": "https://admin.example"})
        assert got.headers["access-control-allow-origin"] == "https://admin.example"
        assert "etag" in got.headers["access-control-expose-headers"].lower()
        evil = client.get("/images", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers


def test_no_cors_headers_without_origins(client: TestClient) -> None:
    r = client.get("/images", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in r.headers


def test_docs_and_schema(client: TestClient) -> None:
    assert "swagger-ui" in client.get("/docs").text.lower()
    assert "redoc" in client.get("/redoc").text.lower()
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "imgpipe API"
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            ok = next(c for c in responses if c.startswith("2"))
            if ok != "204":
                ref = responses[ok]["content"]["application/json"]["schema"]["$ref"]
                model = schemas[ref.rsplit("/", 1)[1]]
                assert "examples" in model, (method, path)
            for code, resp in responses.items():
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in resp["content"], (method, path, code)
                    assert "application/json" not in resp["content"], (method, path, code)


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
