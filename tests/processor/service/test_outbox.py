"""Completion events and originals read in place, on in-memory fakes: the outbox's order of
effects, what a backfill may read, and that an in-place original is never touched."""

from __future__ import annotations

import pytest

from processor.core.changes import DETAIL_TYPES, announcement
from processor.core.errors import TransientError
from processor.core.events import Kind, ObjectEvent
from processor.core.keys import image_id
from processor.core.record import Change, Status
from processor.core.sources import parse_sources
from processor.rules.decide import Reason
from processor.service.images import Action, ProcessorService
from tests.fakes.engine import FakeEngine
from tests.fakes.processor import MemoryBus, MemoryRepo, MemoryStore
from tests.processor.service.test_service import BUCKET, JPEG, Clock

pytestmark = pytest.mark.unit

OTHER = "photos"


@pytest.fixture
def world():
    store, repo, engine, bus = MemoryStore(), MemoryRepo(), FakeEngine(), MemoryBus()
    service = ProcessorService(
        store=store,
        repo=repo,
        engine=engine,
        config=engine.config,
        bucket=BUCKET,
        raw_prefix="raw/",
        public_prefix="public/",
        sources=parse_sources(f"{BUCKET}/legacy/,{OTHER}/archive/"),
        events=bus,
        cdn_base_url="https://cdn.example",
        clock=Clock(),
    )
    return service, store, repo, bus


def backfill(bucket: str, key: str, store: MemoryStore) -> ObjectEvent:
    etag = store.objects[(bucket, key)].etag if (bucket, key) in store.objects else None
    return ObjectEvent(Kind.backfill, bucket, key, etag=etag, name="imgpipe.backfill")


def test_every_announced_change_has_its_own_event_type() -> None:
    assert set(DETAIL_TYPES) == set(Change)
    assert len(set(DETAIL_TYPES.values())) == len(DETAIL_TYPES)


def test_the_api_and_the_events_share_one_image_view() -> None:
    import api.schemas
    import processor.core.view

    assert api.schemas.ImagePublic is processor.core.view.ImagePublic
    assert api.schemas.image_public is processor.core.view.image_public


def test_a_done_image_is_announced_once_after_its_save(world):
    service, store, repo, bus = world
    store.upload(OTHER, "archive/cat.jpg", JPEG)
    outcome = service.handle(backfill(OTHER, "archive/cat.jpg", store))
    assert outcome.action is Action.done
    (event,) = bus.published
    record = repo.records[outcome.image_id]
    assert (event.detail_type, event.version, event.event_id) == (
        "Image Processed",
        record.version,
        f"{record.id}-{record.version}",
    )
    assert record.pending_event is None  # settled after the publication
    assert record.source_key == "archive/cat.jpg" and record.bucket == OTHER


def test_a_publication_that_fails_after_the_save_is_made_by_the_retry(world):
    service, store, repo, bus = world
    store.upload(BUCKET, "legacy/dog.jpg", JPEG)
    event = backfill(BUCKET, "legacy/dog.jpg", store)
    bus.failures = 1
    # WHEN EventBridge refuses after the record was saved done
    with pytest.raises(TransientError):
        service.handle(event)
    saved = repo.records[image_id(BUCKET, "legacy/dog.jpg")]
    assert saved.status is Status.done and saved.pending_event is Change.processed
    assert bus.published == []
    # THEN the message's retry publishes the same event (same id) and makes nothing again
    outcome = service.handle(event)
    assert (outcome.action, outcome.reason) == (Action.skipped, Reason.duplicate)
    (published,) = bus.published
    assert published == announcement(saved, "https://cdn.example")
    assert repo.records[saved.id].pending_event is None


def test_a_state_that_replaces_an_unannounced_one_publishes_both_in_order(world):
    service, store, repo, bus = world
    key = "legacy/bird.jpg"
    store.upload(BUCKET, key, JPEG)
    bus.failures = 1
    with pytest.raises(TransientError):
        service.handle(backfill(BUCKET, key, store))
    # WHEN the object changes and its new bytes are applied before the retry came
    store.upload(BUCKET, key, b"BAD bytes now")
    outcome = service.handle(backfill(BUCKET, key, store))
    assert outcome.action is Action.failed
    assert [(e.detail_type, e.version) for e in bus.published] == [
        ("Image Processed", 1),
        ("Image Failed", 2),
    ]


def test_without_a_bus_no_record_keeps_an_event_pending(world):
    service, store, repo, _ = world
    service.events = None
    store.upload(BUCKET, "raw/u/cat.jpg", JPEG)
    outcome = service.handle(
        ObjectEvent(Kind.created, BUCKET, "raw/u/cat.jpg", name="ObjectCreated:Put")
    )
    assert repo.records[outcome.image_id].pending_event is None


def test_backfill_reads_only_its_sources_and_never_s3_events_outside_raw(world):
    service, store, _, bus = world
    for bucket, key in [(OTHER, "secret/passport.jpg"), (BUCKET, "public/thumbs/x.jpg")]:
        store.upload(bucket, key, JPEG)
        outcome = service.handle(backfill(bucket, key, store))
        assert outcome.action is Action.skipped
        assert outcome.reason in (Reason.foreign_bucket, Reason.outside_raw_prefix)
    # An S3 event for a key in a source is still refused: only our own messages may read it.
    store.upload(BUCKET, "legacy/x.jpg", JPEG)
    s3_event = ObjectEvent(Kind.created, BUCKET, "legacy/x.jpg", name="ObjectCreated:Put")
    assert service.handle(s3_event).reason is Reason.outside_raw_prefix
    assert store.calls == [] and bus.published == []


def test_a_second_backfill_of_the_same_bytes_is_skipped_without_reading_them(world):
    service, store, _, bus = world
    store.upload(OTHER, "archive/a.jpg", JPEG)
    store.upload(OTHER, "archive/bad.jpg", b"BAD bytes")
    for key in ("archive/a.jpg", "archive/bad.jpg"):
        service.handle(backfill(OTHER, key, store))
    store.calls.clear()
    for key in ("archive/a.jpg", "archive/bad.jpg"):
        outcome = service.handle(backfill(OTHER, key, store))
        assert (outcome.action, outcome.reason) == (Action.skipped, Reason.duplicate)
    assert store.calls == []  # not even a GET
    assert [e.detail_type for e in bus.published] == ["Image Processed", "Image Failed"]


def test_forgetting_an_in_place_image_keeps_its_original(world):
    service, store, repo, bus = world
    key = "archive/keep.jpg"
    store.upload(OTHER, key, JPEG)
    service.handle(backfill(OTHER, key, store))
    renditions = store.keys("public/")
    assert renditions
    forget = ObjectEvent(Kind.forget, OTHER, key, name="imgpipe.forget")
    outcome = service.handle(forget)
    # THEN the record is deleted and announced, the original and its versions stay
    assert outcome.action is Action.deleted
    assert repo.records[outcome.image_id].status is Status.deleted
    assert store.objects[(OTHER, key)].data == JPEG
    assert not [c for c in store.calls if c[0] in ("delete_versions", "exists") and key in c[1]]
    assert [e.detail_type for e in bus.published] == ["Image Processed", "Image Deleted"]
    # ... and forgetting it again changes nothing
    assert service.handle(forget).reason is Reason.duplicate
