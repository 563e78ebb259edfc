"""The processor's decisions on plain values: no store, no table, no engine, microseconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from processor.core.config import EngineConfig, RenditionSpec
from processor.core.events import Kind, ObjectEvent, normalize_sequencer
from processor.core.keys import content_version, image_id, rendition_key
from processor.core.record import Change, ErrorInfo, ImageRecord, RenditionInfo, Status
from processor.rules.decide import (
    Copy,
    Derive,
    Reason,
    Remove,
    Reuse,
    Skip,
    Unchanged,
    admit,
    decide,
    decide_removal,
    screen,
)

pytestmark = pytest.mark.unit

BUCKET = "bkt"
KEY = "raw/cat.jpg"
IID = image_id(BUCKET, KEY)
SHA = "ab" * 32
CONFIG = EngineConfig()
VERSION = content_version(SHA, CONFIG.version)
NOW = "2024-05-01T12:00:00.000000Z"


def event(kind: Kind = Kind.created, seq: str | None = "0A", key: str = KEY) -> ObjectEvent:
    return ObjectEvent(kind, BUCKET, key, normalize_sequencer(seq))


def renditions(iid: str, version: str, config: EngineConfig = CONFIG) -> list[RenditionInfo]:
    return [
        RenditionInfo(
            name=spec.name,
            key=rendition_key(spec.folder, iid, fmt, version),
            format=fmt,
            content_type=f"image/{fmt}",
            width=spec.width,
            height=spec.height,
            bytes=100,
        )
        for spec in config.renditions
        for fmt in spec.formats
    ]


def done(
    key: str = KEY,
    seq: str | None = "0A",
    version: str = VERSION,
    config: EngineConfig = CONFIG,
) -> ImageRecord:
    iid = image_id(BUCKET, key)
    return ImageRecord.first_sight(image_id=iid, bucket=BUCKET, source_key=key, now=NOW).done(
        now=NOW,
        sequencer=normalize_sequencer(seq),
        config_version=config.version,
        content_version=version,
        facts=None,
        renditions=renditions(iid, version, config),
        processing_ms=1.0,
        timings={},
    )


def never() -> Iterator[ImageRecord]:
    """Donors that must not be asked for (the query is I/O)."""
    raise AssertionError("donors were queried")
    yield  # pragma: no cover


# --- admit: where --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket", "key", "reason"),
    [
        ("other", KEY, Reason.foreign_bucket),
        (BUCKET, "public/thumbs/x.jpg", Reason.outside_raw_prefix),
        (BUCKET, "raw/folder/", Reason.outside_raw_prefix),
        (BUCKET, KEY, None),
    ],
)
def test_admit_refuses_other_buckets_and_keys_outside_raw(bucket, key, reason):
    decision = admit(ObjectEvent(Kind.created, bucket, key), bucket=BUCKET, raw_prefix="raw/")
    assert decision == (Skip(reason) if reason else None)


# --- screen and decide: an upload ----------------------------------------------------------


def test_first_sight_derives():
    assert screen(event(), None, CONFIG) is None
    assert decide(event(), None, SHA, CONFIG) == Derive(VERSION)


def test_an_older_event_is_stale():
    assert screen(event(seq="09"), done(seq="0A"), CONFIG) == Skip(Reason.stale)
    assert decide(event(seq="09"), done(seq="0A"), SHA, CONFIG, never()) == Skip(Reason.stale)


@pytest.mark.parametrize("status", [Status.done, Status.failed])
def test_the_same_event_again_is_a_duplicate(status):
    current = done().model_copy(update={"status": status})
    assert screen(event(seq="0A"), current, CONFIG) == Skip(Reason.duplicate)


def test_not_a_duplicate_without_order_under_another_config_or_when_forced():
    assert screen(event(seq=None), done(seq=None), CONFIG) is None
    other = EngineConfig(renditions=(RenditionSpec(name="t", folder="t", width=9, height=9),))
    assert screen(event(seq="0A"), done(seq="0A"), other) is None
    assert screen(event(Kind.reprocess, seq="0A"), done(seq="0A"), CONFIG) is None


def test_same_bytes_and_config_are_unchanged_without_a_query():
    assert decide(event(seq="0B"), done(seq="0A"), SHA, CONFIG, never()) == Unchanged(VERSION)


def test_reprocess_derives_even_unchanged_bytes_without_a_query():
    decision = decide(event(Kind.reprocess, seq=None), done(), SHA, CONFIG, never())
    assert decision == Derive(VERSION)


def test_a_done_image_with_the_same_bytes_is_reused_under_this_images_keys():
    donor = done(key="raw/other.jpg")
    decision = decide(event(), None, SHA, CONFIG, [donor])
    assert isinstance(decision, Reuse) and decision.version == VERSION
    (plan,) = decision.donors
    assert plan.record is donor
    assert plan.copies == tuple(
        Copy(source_key=d.key, rendition=mine)
        for d, mine in zip(donor.renditions, renditions(IID, VERSION), strict=True)
    )
    assert all(IID in c.rendition.key and donor.id not in c.rendition.key for c in plan.copies)


@pytest.mark.parametrize(
    "donor",
    [
        done(),  # this image itself
        done(key="raw/other.jpg").model_copy(update={"status": Status.processing}),
        done(key="raw/other.jpg", version="0000000000"),  # other bytes or config
        done(key="raw/other.jpg").model_copy(update={"config_version": "old"}),
        done(key="raw/other.jpg").model_copy(update={"renditions": []}),
        done(key="raw/other.jpg").model_copy(
            update={
                "renditions": [
                    done(key="raw/other.jpg").renditions[0].model_copy(update={"name": "gone"})
                ]
            }
        ),
    ],
    ids=["self", "not-done", "other-version", "other-config", "no-renditions", "unknown-name"],
)
def test_donors_that_cannot_give_these_renditions_are_passed_over(donor):
    assert decide(event(), None, SHA, CONFIG, [donor]) == Derive(VERSION)


def test_donors_are_tried_in_order_and_unusable_ones_left_out():
    first, second = done(key="raw/a.jpg"), done(key="raw/b.jpg")
    unusable = done(key="raw/c.jpg", version="0000000000")
    decision = decide(event(), None, SHA, CONFIG, [first, unusable, second])
    assert isinstance(decision, Reuse)
    assert [d.record.id for d in decision.donors] == [first.id, second.id]


# --- decide_removal: a delete --------------------------------------------------------------


def test_removal_decisions():
    gone = done().deleted(now=NOW, sequencer=None)
    cases = [
        (event(Kind.removed, "09"), done(seq="0A"), False, Skip(Reason.stale)),
        (event(Kind.removed, None), done(), True, Skip(Reason.recreated)),
        (event(Kind.removed, "0A"), gone, False, Skip(Reason.duplicate)),
        (event(Kind.removed, None), gone, False, Skip(Reason.duplicate)),
        (event(Kind.removed, "0B"), done(seq="0A"), False, Remove()),
        (event(Kind.removed, None), None, False, Remove()),
    ]
    for removal, current, exists, expected in cases:
        assert decide_removal(removal, current, object_exists=exists) == expected, removal


# --- the record's transitions and the reasons' names ---------------------------------------


def test_transitions_keep_identity_and_created_at_and_the_newest_order():
    base = ImageRecord.first_sight(image_id=IID, bucket=BUCKET, source_key=KEY, now=NOW)
    assert (base.status, base.created_at, base.updated_at) == (Status.processing, NOW, NOW)
    later = "2024-05-01T12:00:05.000000Z"
    ok = done(seq="0A")
    failed = ok.failed(
        now=later,
        sequencer=None,
        config_version=CONFIG.version,
        error=ErrorInfo(code="corrupt_image", message="bad"),
        processing_ms=2.0,
    )
    deleted = ok.deleted(now=later, sequencer=normalize_sequencer("0B"))
    for record in (failed, deleted):
        assert (record.created_at, record.updated_at, record.renditions) == (NOW, later, [])
    assert (failed.id, failed.source_key, failed.bucket) == (IID, KEY, BUCKET)
    assert failed.sequencer == ok.sequencer  # no order in the event: the stored one is kept
    assert failed.error is not None and failed.content_version is None
    # A tombstone: id, status, times and order only; no file name, facts or content
    # versions; the next record version, and its deletion to announce.
    assert deleted.model_dump(exclude_defaults=True) == {
        "id": IID,
        "source_key": "",
        "status": Status.deleted,
        "created_at": NOW,
        "updated_at": later,
        "sequencer": normalize_sequencer("0B"),
        "version": ok.version + 1,
        "pending_event": Change.deleted,
    }
    assert (failed.version, failed.pending_event) == (ok.version + 1, Change.failed)
    assert ok.deleted(now=later, sequencer=None).sequencer == ok.sequencer  # stored order kept


def test_reason_values_are_the_stable_names_logs_and_metrics_use():
    assert {r.value for r in Reason} == {
        "derived",
        "reused",
        "rejected",
        "starved",
        "removed",
        "stale",
        "superseded",
        "duplicate",
        "unchanged",
        "source_missing",
        "outside_raw_prefix",
        "foreign_bucket",
        "recreated",
        "purged",
    }
