"""The service's delivery semantics, on in-memory fakes: no AWS, no libvips, milliseconds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from processor.core.config import EngineConfig, Limits
from processor.core.errors import TransientError
from processor.core.events import Kind, ObjectEvent, normalize_sequencer
from processor.core.keys import image_id
from processor.core.ports import IMMUTABLE
from processor.core.record import Status
from processor.service.images import Action, ProcessorService, timestamp
from tests.fakes.engine import FakeEngine
from tests.fakes.processor import MemoryCdn, MemoryRepo, MemoryStore, fake_service

pytestmark = pytest.mark.unit

BUCKET = "bkt"
JPEG = b"\xff\xd8\xff fake jpeg bytes"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def cdn() -> MemoryCdn:
    return MemoryCdn()


@pytest.fixture
def world(cdn):
    store, repo, engine = MemoryStore(), MemoryRepo(), FakeEngine()
    service = fake_service(store, repo, engine, cdn=cdn, clock=Clock())
    return service, store, repo, engine


def created(key: str, store: MemoryStore | None = None, seq: str | None = None) -> ObjectEvent:
    etag = store.objects[(BUCKET, key)].etag if store and (BUCKET, key) in store.objects else None
    return ObjectEvent(
        Kind.created, BUCKET, key, normalize_sequencer(seq), etag=etag, name="ObjectCreated:Put"
    )


def removed(key: str, seq: str | None = None) -> ObjectEvent:
    return ObjectEvent(
        Kind.removed, BUCKET, key, normalize_sequencer(seq), name="ObjectRemoved:Delete"
    )


def reprocess(key: str) -> ObjectEvent:
    return ObjectEvent(Kind.reprocess, BUCKET, key, name="imgpipe.reprocess")


def rendition_objects(store: MemoryStore) -> list[str]:
    return store.keys("public/")


def test_upload_becomes_renditions_and_a_done_record(world):
    service, store, repo, _ = world
    store.upload(BUCKET, "raw/cat.jpg", JPEG)

    outcome = service.handle(created("raw/cat.jpg", store, "0A"))

    iid = image_id(BUCKET, "raw/cat.jpg")
    assert (outcome.action, outcome.reason, outcome.image_id) == (Action.done, "derived", iid)
    record = repo.records[iid]
    assert record.status is Status.done and record.error is None
    assert record.source_key == "raw/cat.jpg" and record.bucket == BUCKET
    assert record.config_version == EngineConfig().version
    assert record.content_version and record.facts and record.facts.input_bytes == len(JPEG)
    assert len(record.renditions) == 6  # thumb + optimized, avif + webp + jpeg
    assert sorted("public/" + r.key for r in record.renditions) == rendition_objects(store)
    for r in record.renditions:
        assert record.content_version in r.key and iid in r.key
        stored = store.objects[(BUCKET, "public/" + r.key)]
        assert stored.content_type == r.content_type
        assert stored.cache_control == IMMUTABLE == "public, max-age=31536000, immutable"
    assert outcome.input_bytes == len(JPEG)
    assert outcome.output_bytes == sum(r.bytes for r in record.renditions)


def test_duplicate_delivery_does_nothing_twice(world):
    service, store, repo, engine = world
    store.upload(BUCKET, "raw/cat.jpg", JPEG)
    event = created("raw/cat.jpg", store, "0A")

    first, second = service.handle(event), service.handle(event)

    assert first.action is Action.done
    assert (second.action, second.reason) == (Action.skipped, "duplicate")
    assert len(engine.processed) == 1 and len(repo.records) == 1
    assert len(rendition_objects(store)) == 6


def test_duplicate_without_sequencer_is_recognised_by_content(world):
    # moto sends no sequencer: the bytes' hash shows nothing changed
    service, store, repo, engine = world
    store.upload(BUCKET, "raw/cat.jpg", JPEG)
    event = created("raw/cat.jpg", store)
    service.handle(event)
    again = service.handle(event)
    assert (again.action, again.reason) == (Action.skipped, "unchanged")
    assert len(engine.processed) == 1 and len(rendition_objects(store)) == 6


def test_stale_event_never_overwrites_newer_state(world):
    service, store, repo, engine = world
    key = "raw/dog.jpg"
    store.upload(BUCKET, key, b"second upload")
    newer = created(key, store, "0055AED6DCD90281F0")
    older = ObjectEvent(Kind.created, BUCKET, key, normalize_sequencer("0055AED6DCD90281E5"))

    assert service.handle(newer).action is Action.done
    before = repo.records[image_id(BUCKET, key)]
    reads = len(store.calls)
    outcome = service.handle(older)

    assert (outcome.action, outcome.reason) == (Action.skipped, "stale")
    assert repo.records[before.id] == before
    assert len(engine.processed) == 1
    assert len(store.calls) == reads  # known stale from the record: S3 is not even read


def test_reordered_overwrite_events_end_on_the_newest_bytes(world):
    # GIVEN two uploads to one key whose events arrive newest first
    service, store, repo, _ = world
    key = "raw/dog.jpg"
    store.upload(BUCKET, key, b"v1 bytes")
    e1 = created(key, store, "0100")
    store.upload(BUCKET, key, b"v2 bytes")
    e2 = created(key, store, "0200")
    # WHEN the newer one is applied first, then the older one
    assert service.handle(e2).action is Action.done
    late = service.handle(e1)
    # THEN the older one changes nothing (its bytes are gone: ETag mismatch, or the sequencer)
    assert late.action is Action.skipped and late.reason in {"stale", "superseded"}
    record = repo.records[image_id(BUCKET, key)]
    assert record.facts is not None
    assert record.facts.input_bytes == len(b"v2 bytes")
    assert record.sequencer == normalize_sequencer("0200")
    assert sorted("public/" + r.key for r in record.renditions) == rendition_objects(store)


def test_superseded_event_is_skipped_by_etag(world):
    service, store, repo, engine = world
    key = "raw/x.jpg"
    store.upload(BUCKET, key, b"v1")
    e1 = created(key, store)  # no sequencer (moto), but an ETag
    store.upload(BUCKET, key, b"v2")
    outcome = service.handle(e1)
    assert (outcome.action, outcome.reason) == (Action.skipped, "superseded")
    assert engine.processed == [] and rendition_objects(store) == []


def test_overwrite_replaces_renditions_and_removes_the_old_ones(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, b"first")
    service.handle(created(key, store, "01"))
    first = repo.records[image_id(BUCKET, key)]

    store.upload(BUCKET, key, b"second")
    outcome = service.handle(created(key, store, "02"))

    second = repo.records[first.id]
    assert outcome.action is Action.done
    assert second.content_version != first.content_version
    assert second.created_at == first.created_at  # first sight is kept
    assert second.updated_at > first.updated_at
    # only the new version's renditions remain: URLs of the old one are gone, not stale
    assert rendition_objects(store) == sorted("public/" + r.key for r in second.renditions)
    assert not {r.key for r in first.renditions} & {r.key for r in second.renditions}


def test_delete_removes_renditions_and_marks_deleted(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    service.handle(created(key, store, "01"))
    del store.objects[(BUCKET, key)]

    outcome = service.handle(removed(key, "02"))

    record = repo.records[image_id(BUCKET, key)]
    assert outcome.action is Action.deleted
    assert record.status is Status.deleted and record.renditions == []
    assert record.sequencer == normalize_sequencer("02")
    assert rendition_objects(store) == []
    assert service.handle(removed(key, "02")).reason == "duplicate"


def test_delete_leaves_no_version_a_tombstone_and_an_invalidation_per_rendition(world, cdn):
    # GIVEN an image processed twice (an overwrite: the first renditions are noncurrent now)
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    service.handle(created(key, store, "01"))
    first = repo.records[image_id(BUCKET, key)]
    store.upload(BUCKET, key, JPEG + b" edited")
    service.handle(created(key, store, "02"))
    second = repo.records[image_id(BUCKET, key)]
    store.delete(BUCKET, [key])  # what DELETE /images/{id} or `aws s3 rm` does: a marker

    outcome = service.handle(removed(key, "03"))

    # THEN nothing of the original or of any rendition stays, in any version
    assert outcome.action is Action.deleted
    assert store.all_versions("raw/") == [] and store.all_versions("public/") == []
    # ... every rendition path of both content versions is invalidated, in one request
    keys = {r.key for r in first.renditions} | {r.key for r in second.renditions}
    assert len(cdn.invalidations) == 1
    assert sorted(cdn.invalidations[0]) == sorted("/" + k for k in keys)
    # ... and the record is a tombstone: id, status, times and order, nothing else
    tomb = repo.records[image_id(BUCKET, key)]
    assert tomb.model_dump(exclude_defaults=True) == {
        "id": first.id,
        "source_key": "",
        "status": Status.deleted,
        "created_at": first.created_at,
        "updated_at": tomb.updated_at,
        "sequencer": normalize_sequencer("03"),
        "version": 3,  # done, done again, deleted
    }


def test_an_erase_the_cdn_refuses_is_retried_and_resumes(world, cdn):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    service.handle(created(key, store, "01"))
    store.delete(BUCKET, [key])
    cdn.failures = 1  # CloudFront: TooManyInvalidationsInProgress, past the adapter's retries

    with pytest.raises(TransientError):
        service.handle(removed(key, "02"))
    # nothing purged before the CDN agreed: the redelivery finds every path again
    assert store.all_versions("public/") != [] and cdn.invalidations == []

    outcome = service.handle(removed(key, "02"))  # the queue's redelivery

    assert outcome.reason == "duplicate"
    assert store.all_versions() == []
    assert len(cdn.invalidations) == 1 and cdn.invalidations[0]
    assert service.handle(removed(key, "02")).reason == "duplicate"
    assert len(cdn.invalidations) == 1  # erased already: nothing more to invalidate


def test_erasing_never_touches_a_live_upload_of_the_same_key(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    service.handle(created(key, store, "01"))
    store.delete(BUCKET, [key])
    store.upload(BUCKET, key, JPEG + b" again")  # uploaded again before the delete is seen

    service.handle(removed(key, "02"))

    assert store.all_versions("raw/") == [key] and store.keys("raw/") == [key]
    assert [v.is_latest for v in store.list_versions(BUCKET, key)] == [True]


def test_stale_delete_is_dropped(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    service.handle(created(key, store, "05"))
    outcome = service.handle(removed(key, "03"))  # an older delete, delivered late
    assert (outcome.action, outcome.reason) == (Action.skipped, "stale")
    assert repo.records[image_id(BUCKET, key)].status is Status.done
    assert len(rendition_objects(store)) == 6


def test_delete_without_sequencer_while_the_object_exists_again(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    service.handle(created(key, store))
    outcome = service.handle(removed(key))  # older delete; the key holds an object again
    assert (outcome.action, outcome.reason) == (Action.skipped, "recreated")
    assert repo.records[image_id(BUCKET, key)].status is Status.done


def test_create_after_a_newer_delete_is_stale(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    service.handle(removed(key, "09"))  # tombstone with the delete's order
    store.upload(BUCKET, key, JPEG)
    outcome = service.handle(created(key, store, "05"))
    assert outcome.reason == "stale"
    assert repo.records[image_id(BUCKET, key)].status is Status.deleted
    assert rendition_objects(store) == []


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"BAD header", "corrupt_image"), (b"HUGE", "too_many_pixels"), (b"", "empty_image")],
)
def test_bad_image_is_failed_not_retried(world, data, code):
    service, store, repo, _ = world
    key = "raw/bad.jpg"
    store.upload(BUCKET, key, data)
    outcome = service.handle(created(key, store, "01"))  # no exception: the message is done
    record = repo.records[image_id(BUCKET, key)]
    assert outcome.action is Action.failed and outcome.error is not None
    assert outcome.error.code == code
    assert record.status is Status.failed and record.error == outcome.error
    assert record.renditions == [] and rendition_objects(store) == []


def test_too_many_bytes_is_refused_before_reading(world):
    service, store, repo, engine = world
    small = EngineConfig(limits=Limits(max_input_bytes=10))
    service = ProcessorService(
        store=store,
        repo=repo,
        engine=engine,
        config=small,
        bucket=BUCKET,
        raw_prefix="raw/",
        public_prefix="public/",
    )
    store.upload(BUCKET, "raw/big.jpg", b"x" * 11)
    outcome = service.handle(created("raw/big.jpg", store))
    assert outcome.error is not None and outcome.error.code == "too_large"
    assert engine.processed == []


def test_overwrite_with_a_bad_image_fails_and_removes_old_renditions(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    service.handle(created(key, store, "01"))
    store.upload(BUCKET, key, b"BAD now")
    outcome = service.handle(created(key, store, "02"))
    assert outcome.action is Action.failed
    assert repo.records[outcome.image_id].status is Status.failed
    assert rendition_objects(store) == []


def test_vanished_object_is_skipped(world):
    service, store, repo, engine = world
    outcome = service.handle(created("raw/gone.jpg", seq="01"))
    assert (outcome.action, outcome.reason) == (Action.skipped, "source_missing")
    assert engine.processed == []


@pytest.mark.parametrize("key", ["public/thumbs/x.jpg", "other/cat.jpg", "raw/", "raw/folder/"])
def test_keys_outside_raw_are_refused(world, key):
    service, store, repo, engine = world
    store.upload(BUCKET, key, JPEG)
    outcome = service.handle(created(key, store))
    assert (outcome.action, outcome.reason) == (Action.skipped, "outside_raw_prefix")
    assert repo.records == {} and engine.processed == [] and store.calls == []


def test_events_for_another_bucket_are_refused(world):
    service, store, repo, _ = world
    event = ObjectEvent(Kind.created, "someone-else", "raw/cat.jpg")
    assert service.handle(event).reason == "foreign_bucket"
    assert repo.records == {}


@pytest.mark.parametrize("method", ["open", "put"])
def test_transient_store_failure_raises_and_marks_nothing_done(world, method):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    store.failures[method] = 1
    with pytest.raises(TransientError):
        service.handle(created(key, store, "01"))
    record = repo.records.get(image_id(BUCKET, key))
    assert record is None or record.status is Status.processing
    # the queue's retry then succeeds, and leaves exactly one set of renditions
    assert service.handle(created(key, store, "01")).action is Action.done
    assert len(rendition_objects(store)) == 6


def test_transient_repository_failure_on_save_then_retry(world):
    service, store, repo, engine = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, JPEG)
    repo.failures["save"] = 1
    with pytest.raises(TransientError):
        service.handle(created(key, store, "01"))
    assert repo.records[image_id(BUCKET, key)].status is Status.processing
    assert service.handle(created(key, store, "01")).action is Action.done
    assert len(rendition_objects(store)) == 6  # same keys written again, none extra


def test_content_dedupe_copies_instead_of_decoding(world):
    service, store, repo, engine = world
    store.upload(BUCKET, "raw/a.jpg", JPEG)
    store.upload(BUCKET, "raw/copy of a.jpg", JPEG)
    first = service.handle(created("raw/a.jpg", store))
    second = service.handle(created("raw/copy of a.jpg", store))

    assert first.reason == "derived"
    assert (second.action, second.reason, second.reused_from) == (
        Action.done,
        "reused",
        first.image_id,
    )
    assert engine.processed == [first.image_id]  # one decode for two images
    a, b = repo.records[first.image_id], repo.records[second.image_id]
    assert a.facts == b.facts and a.content_version == b.content_version
    assert all(second.image_id in r.key for r in b.renditions)
    for r in b.renditions:
        copy = store.objects[(BUCKET, "public/" + r.key)]
        assert copy.cache_control == IMMUTABLE and copy.content_type == r.content_type


def test_dedupe_falls_back_to_decoding_when_the_donor_vanished(world):
    service, store, repo, engine = world
    store.upload(BUCKET, "raw/a.jpg", JPEG)
    store.upload(BUCKET, "raw/b.jpg", JPEG)
    first = service.handle(created("raw/a.jpg", store))
    for r in repo.records[first.image_id].renditions[1:]:
        del store.objects[(BUCKET, "public/" + r.key)]  # donor half gone
    outcome = service.handle(created("raw/b.jpg", store))
    assert outcome.reason == "derived"
    b = repo.records[outcome.image_id]
    assert all((BUCKET, "public/" + r.key) in store.objects for r in b.renditions)
    # no half-copied leftovers of b beyond what its record lists
    b_objects = [k for k in rendition_objects(store) if outcome.image_id in k]
    assert sorted(b_objects) == sorted("public/" + r.key for r in b.renditions)


def test_reprocess_forces_a_new_derive(world):
    service, store, repo, engine = world
    store.upload(BUCKET, "raw/a.jpg", JPEG)
    service.handle(created("raw/a.jpg", store, "01"))
    outcome = service.handle(reprocess("raw/a.jpg"))
    assert (outcome.action, outcome.reason) == (Action.done, "derived")
    assert len(engine.processed) == 2
    record = repo.records[outcome.image_id]
    assert record.sequencer == normalize_sequencer("01")  # the order is kept
    assert len(rendition_objects(store)) == 6


def test_reprocess_under_a_new_config_moves_to_new_keys(world):
    service, store, repo, engine = world
    store.upload(BUCKET, "raw/a.jpg", JPEG)
    service.handle(created("raw/a.jpg", store, "01"))
    old = repo.records[image_id(BUCKET, "raw/a.jpg")]
    config = EngineConfig.model_validate(
        {"renditions": [{"name": "thumb", "folder": "thumbs", "width": 200, "height": 200}]}
    )
    new_service = ProcessorService(
        store=store,
        repo=repo,
        engine=FakeEngine(config),
        config=config,
        bucket=BUCKET,
        raw_prefix="raw/",
        public_prefix="public/",
    )
    outcome = new_service.handle(reprocess("raw/a.jpg"))
    new = repo.records[outcome.image_id]
    assert new.config_version == config.version != old.config_version
    assert rendition_objects(store) == sorted("public/" + r.key for r in new.renditions)


def test_two_lambdas_racing_on_one_event_give_one_record_and_the_same_outputs(world):
    # GIVEN two workers that both get past every check before either writes its record
    service, store, repo, engine = world
    store.upload(BUCKET, "raw/race.jpg", JPEG)
    event = created("raw/race.jpg", store, "01")
    barrier = threading.Barrier(2, timeout=5)
    engine.before_process = barrier.wait
    outcomes = []

    def work() -> None:
        outcomes.append(service.handle(event))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN both report done, one record exists, and only its renditions are stored
    assert [o.action for o in outcomes] == [Action.done, Action.done]
    assert len(repo.records) == 1
    record = next(iter(repo.records.values()))
    assert record.status is Status.done
    assert rendition_objects(store) == sorted("public/" + r.key for r in record.renditions)


def test_racing_overwrite_loser_cleans_up_what_it_wrote(world):
    # GIVEN an older event that derives its bytes while a newer event is applied first
    service, store, repo, engine = world
    key = "raw/race.jpg"
    store.upload(BUCKET, key, b"old bytes")
    old_event = ObjectEvent(Kind.created, BUCKET, key, normalize_sequencer("01"))

    def newer_lands_first() -> None:
        engine.before_process = None
        store.upload(BUCKET, key, b"new bytes")
        assert service.handle(created(key, store, "02")).action is Action.done

    engine.before_process = newer_lands_first
    outcome = service.handle(old_event)
    # THEN the old event loses the conditional write and removes its own renditions
    assert (outcome.action, outcome.reason) == (Action.skipped, "stale")
    record = repo.records[image_id(BUCKET, key)]
    assert record.sequencer == normalize_sequencer("02")
    assert rendition_objects(store) == sorted("public/" + r.key for r in record.renditions)


def test_failed_cleanup_is_reported_as_orphans_not_retried(world):
    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, b"one")
    service.handle(created(key, store, "01"))
    store.upload(BUCKET, key, b"two")
    store.failures["delete"] = 1
    outcome = service.handle(created(key, store, "02"))
    assert outcome.action is Action.done and len(outcome.orphaned) == 6
    assert repo.records[outcome.image_id].status is Status.done


def test_timestamps_sort_as_times():
    early = timestamp(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = timestamp(datetime(2024, 1, 2, 3, 4, 5, 1, tzinfo=UTC))
    assert early == "2024-01-02T03:04:05.000000Z" and early < late


def test_a_race_in_first_sight_is_retried_not_called_superseded(world):
    # GIVEN a first sight whose conditional create loses to a record that is gone again
    service, store, repo, engine = world
    key = "raw/race.jpg"
    store.upload(BUCKET, key, JPEG)

    def take_up_races(**_: object) -> None:
        return None  # the conditional write found a record past processing

    repo.take_up = take_up_races  # this fake instance only
    # WHEN the event is handled THEN the queue retries it: the ETag still matched, so this is
    # no newer upload ("superseded"), and nothing was derived or written
    with pytest.raises(TransientError, match="try started"):
        service.handle(created(key, store, "01"))
    assert engine.processed == [] and rendition_objects(store) == [] and repo.records == {}


def test_a_new_version_drops_the_sizes_made_on_demand_of_the_old_one(world):
    """Sizes made on demand are renditions of a content version: a new upload (or config)
    deletes them with the eager ones, and each is made again at the new version on request."""
    from processor.core.record import RenditionInfo

    service, store, repo, _ = world
    key = "raw/cat.jpg"
    store.upload(BUCKET, key, b"first")
    service.handle(created(key, store, "01"))
    first = repo.records[image_id(BUCKET, key)]
    size = f"sizes/{first.id}-{first.content_version}-640w.webp"
    store.put(BUCKET, f"public/{size}", b"made", content_type="image/webp", cache_control="x")
    made = RenditionInfo(
        name="w640",
        key=size,
        format="webp",
        content_type="image/webp",
        width=640,
        height=480,
        bytes=4,
        on_demand=True,
    )
    repo.records[first.id] = first.model_copy(update={"renditions": [*first.renditions, made]})

    store.upload(BUCKET, key, b"second")
    assert service.handle(created(key, store, "02")).action is Action.done

    second = repo.records[first.id]
    assert not any(r.on_demand for r in second.renditions)
    assert f"public/{size}" not in rendition_objects(store)
    assert rendition_objects(store) == sorted("public/" + r.key for r in second.renditions)
