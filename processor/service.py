"""What one object event does to the world: the processor's use cases, on ports only.

Order of effects, chosen so that a crash or a retry at any point leaves nothing wrong:

1. renditions are written under new, content-versioned keys (nothing points at them yet);
2. the record is saved as done, conditional on the S3 sequencer (a stale event loses here
   and removes what it wrote in step 1);
3. only then are the renditions of the version it replaced deleted.

A failure before step 2 never marks anything done; the queue retries the message and the
same keys are written again. Deletes work the same way: the record is marked deleted first,
then the renditions it listed are removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from processor.core.config import EngineConfig, RenditionSpec
from processor.core.errors import (
    EmptyImage,
    ImageRejected,
    ImageTooLarge,
    SourceMissing,
    StaleEvent,
    TransientError,
)
from processor.core.events import Kind, ObjectEvent, compare_sequencers
from processor.core.keys import content_version, image_id, rendition_key
from processor.core.ports import (
    IMMUTABLE,
    ImageEngine,
    ImageRepository,
    ObjectStore,
    SourceObject,
)
from processor.core.record import ErrorInfo, ImageFacts, ImageRecord, RenditionInfo, Status

log = logging.getLogger(__name__)


class Action(StrEnum):
    done = "done"  # the record is done (renditions derived or reused)
    failed = "failed"  # the image itself is bad: the record is failed, the message is done
    deleted = "deleted"  # the source was removed: renditions deleted, record marked deleted
    skipped = "skipped"  # nothing changed; ``reason`` says why


@dataclass(frozen=True)
class Outcome:
    """What handling one event did; the handler turns it into log lines and metrics."""

    action: Action
    image_id: str
    # done: "derived" | "reused"; skipped: "stale" | "superseded" | "duplicate" | "unchanged" |
    # "source_missing" | "outside_raw_prefix" | "foreign_bucket" | "recreated"
    reason: str = ""
    error: ErrorInfo | None = None
    input_bytes: int = 0  # bytes of the source read (0 when it was not read)
    output_bytes: int = 0  # bytes of renditions written or copied
    processing_ms: float | None = None
    reused_from: str | None = None  # the image whose renditions were copied (content dedupe)
    # Renditions the record no longer lists but that could not be deleted (logged, counted).
    orphaned: tuple[str, ...] = field(default_factory=tuple)


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """Fixed-width ISO 8601 UTC, so that strings sort as times (created_at is a sort key)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_older(event_sequencer: str | None, stored_sequencer: str | None) -> bool:
    """True when the event is known to be older than the stored state for the same key."""
    if event_sequencer is None or stored_sequencer is None:
        return False  # no order is known: the object's current bytes decide
    return compare_sequencers(event_sequencer, stored_sequencer) < 0


class ProcessorService:
    def __init__(
        self,
        *,
        store: ObjectStore,
        repo: ImageRepository,
        engine: ImageEngine,
        config: EngineConfig,
        bucket: str,
        raw_prefix: str,
        public_prefix: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.repo = repo
        self.engine = engine
        self.config = config
        self.bucket = bucket
        self.raw_prefix = raw_prefix
        self.public_prefix = public_prefix
        self.clock = clock
        self._specs: dict[str, RenditionSpec] = {r.name: r for r in config.renditions}
        # Rendition PUTs go out together: four sequential round trips to S3 would add their
        # latencies to every image. Clients are thread-safe; the pool lives with the service.
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="imgpipe-put")

    # --- entry ---------------------------------------------------------------------------

    def handle(self, event: ObjectEvent) -> Outcome:
        """Apply one event. Raises TransientError (retry); everything else is an Outcome."""
        iid = image_id(event.bucket, event.key)
        if event.bucket != self.bucket:
            log.warning("refused: the event is for another bucket", extra={"expected": self.bucket})
            return Outcome(Action.skipped, iid, "foreign_bucket")
        if not event.key.startswith(self.raw_prefix) or event.key.endswith("/"):
            # Outputs live under the public prefix: never reading them means the pipeline
            # cannot trigger itself, even with a misconfigured notification.
            log.warning("refused: the key is not an upload under the raw prefix")
            return Outcome(Action.skipped, iid, "outside_raw_prefix")
        if event.kind is Kind.removed:
            return self._remove(event, iid)
        return self._create(event, iid)

    # --- created / reprocess -------------------------------------------------------------

    def _create(self, event: ObjectEvent, iid: str) -> Outcome:
        current = self.repo.get(iid)
        if current is not None:
            if is_older(event.sequencer, current.sequencer):
                log.info("stale event dropped", extra={"stored_sequencer": current.sequencer})
                return Outcome(Action.skipped, iid, "stale")
            if (
                not event.force
                and event.sequencer is not None
                and event.sequencer == current.sequencer
                and current.status in (Status.done, Status.failed)
                and current.config_version == self.config.version
            ):
                log.info("duplicate event: already applied", extra={"status": current.status})
                return Outcome(Action.skipped, iid, "duplicate")
        started = time.perf_counter()
        try:
            with self.store.open(event.bucket, event.key, etag=event.etag) as source:
                return self._derive(event, iid, current, source, started)
        except SourceMissing:
            log.info("the object is gone: skipped (its delete event cleans up)")
            return Outcome(Action.skipped, iid, "source_missing")
        except StaleEvent:
            # open() with the event's ETag found other bytes: a newer upload replaced this
            # one, and that upload's own event will be (or was) processed.
            log.info("the object was replaced since this event: skipped")
            return Outcome(Action.skipped, iid, "superseded")

    def _derive(
        self,
        event: ObjectEvent,
        iid: str,
        current: ImageRecord | None,
        source: SourceObject,
        started: float,
    ) -> Outcome:
        base = current or self.repo.begin(
            image_id=iid, bucket=event.bucket, source_key=event.key, now=self._now()
        )
        sequencer = event.sequencer or base.sequencer  # the newest order known
        # Where one image's time goes (ms): S3 read, engine decode and encode, S3 writes and
        # the DynamoDB commit. Logged on "image done" and kept on the record.
        timings: dict[str, float] = {}
        try:
            self._check_size(source.size)
            mark = time.perf_counter()
            with self.engine.spool(source.stream) as spooled:
                timings["s3_read"] = _ms_since(mark)
                version = content_version(spooled.sha256, self.config.version)
                if (
                    not event.force
                    and base.status is Status.done
                    and base.content_version == version
                ):
                    return self._unchanged(base, sequencer, source.size)
                reused = None if event.force else self._reuse(iid, spooled.sha256, version)
                if reused is not None:
                    donor, renditions = reused
                    facts: ImageFacts | None = donor.facts
                    written = [r.key for r in renditions]
                    reused_from: str | None = donor.id
                else:
                    result = self.engine.process(
                        spooled, image_id=iid, versioned=True, source_name=event.key
                    )
                    facts, reused_from = result.facts, None
                    timings["decode"] = result.timings.get("decode", 0.0)
                    timings["encode"] = result.timings.get("encode", 0.0)
                    renditions = [o.info for o in result.outputs]
                    mark = time.perf_counter()
                    puts = [
                        self._uploads.submit(
                            self.store.put,
                            self.bucket,
                            self.public_prefix + output.info.key,
                            output.data,
                            content_type=output.info.content_type,
                            cache_control=IMMUTABLE,
                        )
                        for output in result.outputs
                    ]
                    # Every PUT is waited for (and its error raised) before anything is done.
                    errors = [e for e in (f.exception() for f in puts) if e is not None]
                    if errors:
                        raise errors[0]
                    written = [o.info.key for o in result.outputs]
                    timings["s3_write"] = _ms_since(mark)
                    version = result.content_version or version
        except ImageRejected as e:
            return self._fail(event, base, sequencer, e, source.size, started)

        record = ImageRecord(
            id=iid,
            source_key=event.key,
            bucket=event.bucket,
            status=Status.done,
            created_at=base.created_at,
            updated_at=self._now(),
            sequencer=sequencer,
            config_version=self.config.version,
            content_version=version,
            facts=facts,
            renditions=renditions,
            processing_ms=_ms_since(started),
            timings=timings,
        )
        mark = time.perf_counter()
        committed = self._commit(record, written)
        timings["dynamodb"] = _ms_since(mark)
        if committed is None:
            return Outcome(Action.skipped, iid, "stale", input_bytes=source.size)
        log.info(
            "image done",
            extra={
                "renditions": len(renditions),
                "reused_from": reused_from,
                "ms": record.processing_ms,
                "timings": timings,
            },
        )
        return Outcome(
            Action.done,
            iid,
            "reused" if reused_from else "derived",
            input_bytes=source.size,
            output_bytes=sum(r.bytes for r in renditions),
            processing_ms=record.processing_ms,
            reused_from=reused_from,
            orphaned=committed,
        )

    def _check_size(self, size: int) -> None:
        """From Content-Length, before a byte is read: refuse cheaply what the engine would."""
        if size == 0:
            raise EmptyImage("the upload is empty (0 bytes)")
        limit = self.config.limits.max_input_bytes
        if size > limit:
            raise ImageTooLarge(f"the upload is {size:,} bytes; the limit is {limit:,} bytes")

    def _unchanged(self, base: ImageRecord, sequencer: str | None, size: int) -> Outcome:
        """Same bytes, same config, already done: keep the renditions, move the order on."""
        if sequencer != base.sequencer:
            advanced = base.model_copy(update={"sequencer": sequencer, "updated_at": self._now()})
            try:
                self.repo.save(advanced)
            except StaleEvent:
                return Outcome(Action.skipped, base.id, "stale", input_bytes=size)
        log.info("same bytes and config as the stored renditions: nothing to derive")
        return Outcome(Action.skipped, base.id, "unchanged", input_bytes=size)

    def _reuse(
        self, iid: str, sha256: str, version: str
    ) -> tuple[ImageRecord, list[RenditionInfo]] | None:
        """Content dedupe: copy the renditions of a done image with the same bytes and config.

        A server-side copy per rendition instead of a decode and encodes. The donor may vanish
        mid-copy (deleted, overwritten): then this donor is abandoned and the next tried.
        """
        for donor in self.repo.find_by_sha256(sha256):
            if (
                donor.id == iid
                or donor.status is not Status.done
                or donor.config_version != self.config.version
                or donor.content_version != version
                or not donor.renditions
                or any(r.name not in self._specs for r in donor.renditions)
            ):
                continue
            copied: list[RenditionInfo] = []
            try:
                for info in donor.renditions:
                    spec = self._specs[info.name]
                    key = rendition_key(spec.folder, iid, info.format, version)
                    self.store.copy(
                        self.bucket,
                        self.public_prefix + info.key,
                        self.public_prefix + key,
                        content_type=info.content_type,
                        cache_control=IMMUTABLE,
                    )
                    copied.append(info.model_copy(update={"key": key}))
            except SourceMissing:
                log.info("dedupe donor vanished mid-copy", extra={"donor": donor.id})
                self._delete_quietly(r.key for r in copied)
                continue
            return donor, copied
        return None

    def _fail(
        self,
        event: ObjectEvent,
        base: ImageRecord,
        sequencer: str | None,
        error: ImageRejected,
        size: int,
        started: float,
    ) -> Outcome:
        """The image itself is bad: record why, keep the message from being retried."""
        info = ErrorInfo(code=error.code, message=error.message)
        record = ImageRecord(
            id=base.id,
            source_key=event.key,
            bucket=event.bucket,
            status=Status.failed,
            created_at=base.created_at,
            updated_at=self._now(),
            sequencer=sequencer,
            config_version=self.config.version,
            processing_ms=_ms_since(started),
            error=info,
        )
        committed = self._commit(record, written=[])
        if committed is None:
            return Outcome(Action.skipped, base.id, "stale", input_bytes=size)
        log.warning("image rejected", extra={"error_code": info.code, "error": info.message})
        return Outcome(
            Action.failed,
            base.id,
            info.code,
            error=info,
            input_bytes=size,
            processing_ms=record.processing_ms,
            orphaned=committed,
        )

    # --- removed -------------------------------------------------------------------------

    def _remove(self, event: ObjectEvent, iid: str) -> Outcome:
        current = self.repo.get(iid)
        if current is not None and is_older(event.sequencer, current.sequencer):
            log.info("stale delete dropped", extra={"stored_sequencer": current.sequencer})
            return Outcome(Action.skipped, iid, "stale")
        if event.sequencer is None and self.store.exists(event.bucket, event.key):
            # Without a sequencer S3 itself is the judge: the key holds an object again, so
            # this delete is older than that upload, whose own event derives it.
            log.info("delete without order, but the object exists again: skipped")
            return Outcome(Action.skipped, iid, "recreated")
        if (
            current is not None
            and current.status is Status.deleted
            and event.sequencer in (None, current.sequencer)
        ):
            return Outcome(Action.skipped, iid, "duplicate")
        now = self._now()
        record = ImageRecord(
            id=iid,
            source_key=event.key,
            bucket=event.bucket,
            status=Status.deleted,
            created_at=current.created_at if current else now,
            updated_at=now,
            sequencer=event.sequencer or (current.sequencer if current else None),
            config_version=current.config_version if current else None,
            content_version=current.content_version if current else None,
            facts=current.facts if current else None,
        )
        committed = self._commit(record, written=[])
        if committed is None:
            return Outcome(Action.skipped, iid, "stale")
        log.info("image deleted")
        return Outcome(Action.deleted, iid, "removed", orphaned=committed)

    # --- shared --------------------------------------------------------------------------

    def _commit(self, record: ImageRecord, written: Sequence[str]) -> tuple[str, ...] | None:
        """Save ``record``; then delete what it replaced. None when a newer state won.

        Returns the rendition keys that should have been deleted but could not be (orphans).
        """
        try:
            replaced = self.repo.save(record)
        except StaleEvent:
            # A newer event won the race: remove what this one wrote, unless the winner
            # lists the same keys (same bytes and config give the same keys).
            winner = self.repo.get(record.id)
            keep = {r.key for r in winner.renditions} if winner else set()
            log.info("a newer event was applied first: this one is dropped")
            self._delete_quietly(k for k in written if k not in keep)
            return None
        if replaced is None:
            return ()
        keep = {r.key for r in record.renditions}
        return self._delete_quietly(r.key for r in replaced.renditions if r.key not in keep)

    def _delete_quietly(self, keys: Iterable[str]) -> tuple[str, ...]:
        """Delete renditions no record lists. Best effort: the record is already right.

        A failure here is logged (with the keys) rather than retried, because a retry could
        not find these keys again: the record that listed them has been replaced.
        """
        relative = tuple(dict.fromkeys(keys))
        if not relative:
            return ()
        try:
            self.store.delete(self.bucket, [self.public_prefix + k for k in relative])
        except TransientError as e:
            log.warning("renditions left orphaned", extra={"keys": relative, "error": e.message})
            return relative
        return ()

    def _now(self) -> str:
        return timestamp(self.clock())


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
