"""What one object event should do, decided before anything is done: pure, no I/O.

As cosmicpython's handlers decide before they act: ``decide`` turns (event, stored record,
content hash, config) into a decision value (skip, unchanged, reuse, derive) and
``service.py`` carries it out. ``admit`` and ``screen`` are the parts of that decision that
need no bytes (so the service asks them before reading the source), ``decide_removal`` the
same for a delete. Everything here runs in microseconds on plain values; the tests need no
fakes of S3 or DynamoDB.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from processor.core.config import EngineConfig
from processor.core.events import OWN_MESSAGE_KINDS, Kind, ObjectEvent, compare_sequencers
from processor.core.keys import content_version, image_id, rendition_key
from processor.core.record import ImageRecord, RenditionInfo, Status
from processor.core.sources import Source, source_of


class Reason(StrEnum):
    """Why an outcome is what it is: log lines and the ``EventsSkipped`` metric carry it."""

    # done
    derived = "derived"  # decoded and encoded
    reused = "reused"  # copied from a done image with the same bytes and config
    # failed (the error's own code says what was wrong with the image)
    rejected = "rejected"
    # retried: a try starved of CPU comes back later, alone (processor/rules/tries.py)
    starved = "starved"
    # deleted
    removed = "removed"
    # skipped
    stale = "stale"  # older than the stored state
    superseded = "superseded"  # the object's bytes were replaced since the event (ETag)
    duplicate = "duplicate"  # this very event was applied already
    unchanged = "unchanged"  # same bytes and config as the stored renditions
    source_missing = "source_missing"  # the object is gone; its delete event cleans up
    outside_raw_prefix = "outside_raw_prefix"  # not an upload (e.g. our own output)
    foreign_bucket = "foreign_bucket"  # an event for a bucket this service does not own
    recreated = "recreated"  # a delete without order while the object exists again
    purged = "purged"  # a version deleted for good after the image's delete (erasing's echo)


# --- decisions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    reason: Reason


@dataclass(frozen=True)
class Unchanged:
    """Same bytes, same config, already done: keep the renditions, move the order on."""

    version: str


@dataclass(frozen=True)
class Copy:
    """One server-side copy: a donor's rendition to this image's own key."""

    source_key: str  # the donor's key, relative to the public prefix
    rendition: RenditionInfo  # as this image will list it (its own key)


@dataclass(frozen=True)
class Donor:
    record: ImageRecord
    copies: tuple[Copy, ...]


@dataclass(frozen=True)
class Reuse:
    """Content dedupe: copy the renditions of a done image with the same bytes and config.

    Donors in the order to try: one may vanish mid-copy (deleted, overwritten), then the next
    is tried, and with none left the image is derived after all.
    """

    version: str
    donors: tuple[Donor, ...]


@dataclass(frozen=True)
class Derive:
    version: str  # the content version the keys will carry (the engine confirms it)


@dataclass(frozen=True)
class Remove:
    """Mark the record deleted, then delete the renditions it listed."""


Decision = Skip | Unchanged | Reuse | Derive


# --- rules ---------------------------------------------------------------------------------


def is_older(event_sequencer: str | None, stored_sequencer: str | None) -> bool:
    """True when the event is known to be older than the stored state for the same key."""
    if event_sequencer is None or stored_sequencer is None:
        return False  # no order is known: the object's current bytes decide
    return compare_sequencers(event_sequencer, stored_sequencer) < 0


def admit(
    event: ObjectEvent, *, bucket: str, raw_prefix: str, sources: Iterable[Source] = ()
) -> Skip | None:
    """Events this service must not act on, whatever the table holds: anything but an upload
    under the raw prefix, or one of our own messages about a key in a backfill source."""
    if event.bucket == bucket and event.key.startswith(raw_prefix) and not event.key.endswith("/"):
        return None
    if event.kind in OWN_MESSAGE_KINDS and source_of(sources, event.bucket, event.key):
        return None
    if event.bucket != bucket:
        return Skip(Reason.foreign_bucket)
    # Outputs live under the public prefix: never reading them means the pipeline cannot
    # trigger itself, even with a misconfigured notification.
    return Skip(Reason.outside_raw_prefix)


def screen(event: ObjectEvent, current: ImageRecord | None, config: EngineConfig) -> Skip | None:
    """An upload or reprocess event that needs no bytes read: older, or applied already."""
    if current is None:
        return None
    if is_older(event.sequencer, current.sequencer):
        return Skip(Reason.stale)
    final = current.status in (Status.done, Status.failed)
    same_config = current.config_version == config.version
    if (
        not event.force
        and event.sequencer is not None
        and event.sequencer == current.sequencer
        and final
        and same_config
    ):
        return Skip(Reason.duplicate)
    if (
        event.kind is Kind.backfill
        and event.etag is not None
        and event.etag == current.source_etag
        and final
        and same_config
    ):
        # A backfill carries no sequencer: the ETag says these are the bytes already applied.
        return Skip(Reason.duplicate)
    return None


def decide(
    event: ObjectEvent,
    current: ImageRecord | None,
    sha256: str,
    config: EngineConfig,
    donors: Iterable[ImageRecord] = (),
) -> Decision:
    """What to do with these bytes. ``donors``: records with the same hash (iterated only
    when no cheaper answer exists, so a lazy iterable saves a query)."""
    skip = screen(event, current, config)
    if skip is not None:
        return skip
    version = content_version(sha256, config.version)
    if event.force:
        return Derive(version)
    if current is not None and current.status is Status.done and current.content_version == version:
        return Unchanged(version)
    iid = image_id(event.bucket, event.key)
    usable = tuple(d for d in (_donor(r, iid, version, config) for r in donors) if d)
    return Reuse(version, usable) if usable else Derive(version)


def _donor(record: ImageRecord, iid: str, version: str, config: EngineConfig) -> Donor | None:
    """The copies that give ``iid`` this record's renditions, or None if it cannot give them."""
    folders = {spec.name: spec.folder for spec in config.renditions}
    if (
        record.id == iid
        or record.status is not Status.done
        or record.config_version != config.version
        or record.content_version != version
        or not record.renditions
        or any(r.name not in folders for r in record.renditions)
    ):
        return None
    copies = tuple(
        Copy(
            source_key=info.key,
            rendition=info.model_copy(
                update={"key": rendition_key(folders[info.name], iid, info.format, version)}
            ),
        )
        for info in record.renditions
    )
    return Donor(record, copies)


def decide_removal(
    event: ObjectEvent, current: ImageRecord | None, *, object_exists: bool
) -> Skip | Remove:
    """A delete event. ``object_exists``: S3 holds the key again (asked only without order)."""
    if current is not None and is_older(event.sequencer, current.sequencer):
        return Skip(Reason.stale)
    if event.purges_a_version and current is not None and current.status is Status.deleted:
        # Erasing the deleted image removes its versions one by one, and S3 tells the queue
        # about each: the image was deleted once and is counted once.
        return Skip(Reason.purged)
    if event.sequencer is None and object_exists:
        # Without a sequencer S3 itself is the judge: the key holds an object again, so
        # this delete is older than that upload, whose own event derives it.
        return Skip(Reason.recreated)
    if (
        current is not None
        and current.status is Status.deleted
        and event.sequencer in (None, current.sequencer)
    ):
        return Skip(Reason.duplicate)
    return Remove()
