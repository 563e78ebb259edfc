"""What one object event does to the world: the processor's use cases, on ports only.

``decide.py`` says what to do; this module does it. Order of effects, chosen so that a crash
or a retry at any point leaves nothing wrong:

1. renditions are written under new, content-versioned keys (nothing points at them yet);
2. the record is saved as done, conditional on the S3 sequencer (a stale event loses here
   and removes what it wrote in step 1);
3. only then are the renditions of the version it replaced deleted.

A failure before step 2 never marks anything done; the queue retries the message and the
same keys are written again. Deletes work the same way: the record becomes a tombstone
first, then the renditions it listed are removed, then every version of the original and of
the renditions is erased and the CDN told to forget them (``erase.py``).

Each new final state is announced once (``changes.py``) through an outbox: the save that
commits the state also marks its event pending; the event is published after the save and the
mark cleared after that. A crash in between leaves the mark, and the retry of the message
publishes it before anything else (with the same event id), then finds the work done.

Before any of it, the record counts the try (``take_up``): an image stopped with its
invocation is seen by the next delivery, which tries it again or, after ``MAX_INTERRUPTED``
such tries, records it failed; a try that ran out of time while starved of CPU comes back
later as a message of its own (processor/rules/tries.py). ``first_sight`` lets the handler
give every upload of a batch its record before any image starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from processor.core.changes import announcement
from processor.core.config import EngineConfig, check_bytes
from processor.core.errors import (
    ConcurrentWrite,
    EmptyImage,
    ImageRejected,
    ProcessingInterrupted,
    SourceMissing,
    StaleEvent,
    TimeBudgetExceeded,
    TransientError,
)
from processor.core.events import REMOVALS, Kind, ObjectEvent, retry_message
from processor.core.keys import image_id, rendition_folder
from processor.core.messages import TRIES_ATTRIBUTE
from processor.core.ports import (
    IMMUTABLE,
    CdnInvalidator,
    Clocks,
    EventPublisher,
    ImageEngine,
    ImageRepository,
    ObjectStore,
    Reading,
    RetryQueue,
    SourceObject,
    Spooled,
)
from processor.core.record import ErrorInfo, ImageFacts, ImageRecord, RenditionInfo, Status
from processor.core.sizes import FOLDER as SIZES_FOLDER
from processor.core.sources import Source
from processor.rules.decide import (
    Donor,
    Reason,
    Reuse,
    Skip,
    Unchanged,
    admit,
    decide,
    decide_removal,
    screen,
)
from processor.rules.tries import (
    MAX_INTERRUPTED,
    cpu_ratio,
    interrupted,
    retry_starved,
    starved,
    this_try,
)
from processor.service.clocks import ProcessClocks
from processor.service.erase import Eraser

log = logging.getLogger(__name__)


class Action(StrEnum):
    done = "done"  # the record is done (renditions derived or reused)
    failed = "failed"  # the image itself is bad: the record is failed, the message is done
    deleted = "deleted"  # the source was removed: renditions deleted, record marked deleted
    skipped = "skipped"  # nothing changed; ``reason`` says why
    retried = "retried"  # starved of CPU: comes back later, alone, as a message of its own


@dataclass(frozen=True)
class Outcome:
    """What handling one event did; the handler turns it into log lines and metrics."""

    action: Action
    image_id: str
    reason: Reason
    error: ErrorInfo | None = None
    input_bytes: int = 0  # bytes of the source read (0 when it was not read)
    output_bytes: int = 0  # bytes of renditions written or copied
    processing_ms: float | None = None
    reused_from: str | None = None  # the image whose renditions were copied (content dedupe)
    # Renditions the record no longer lists but that could not be deleted (logged, counted).
    orphaned: tuple[str, ...] = field(default_factory=tuple)
    tries: int | None = None  # the try this outcome ended (done, failed, retried)


# What the log says when an event is skipped (the outcome's reason is the stable part).
_SKIP_NOTES = {
    Reason.foreign_bucket: "refused: the event is for another bucket",
    Reason.outside_raw_prefix: "refused: the key is not an upload under the raw prefix",
    Reason.stale: "stale event dropped",
    Reason.duplicate: "duplicate event: already applied",
    Reason.recreated: "delete without order, but the object exists again: skipped",
    Reason.purged: "a version erased after the image's delete: already counted",
}
_REFUSALS = (Reason.foreign_bucket, Reason.outside_raw_prefix)


@dataclass(frozen=True)
class _Made:
    """Renditions now under this image's keys, and where they came from."""

    renditions: list[RenditionInfo]
    facts: ImageFacts | None
    version: str
    reused_from: str | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """Fixed-width ISO 8601 UTC, so that strings sort as times (created_at is a sort key)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        sources: Sequence[Source] = (),
        cdn: CdnInvalidator | None = None,
        events: EventPublisher | None = None,
        cdn_base_url: str = "",
        clock: Callable[[], datetime] = utc_now,
        clocks: Clocks | None = None,
        cpu_share: float = 1.0,
        retry_queue: RetryQueue | None = None,
        retry_delay_s: int = 60,
    ) -> None:
        """``clocks``: wall and process CPU time around the engine's work; ``cpu_share``: the
        CPUs one image can count on (a starved try is judged against it); ``retry_queue``:
        where a starved try comes back, ``retry_delay_s`` later (without one, a timeout is
        always final)."""
        self.store = store
        self.repo = repo
        self.engine = engine
        self.config = config
        self.bucket = bucket
        self.raw_prefix = raw_prefix
        self.public_prefix = public_prefix
        self.sources = tuple(sources)  # backfill sources: originals read in place
        self.clock = clock
        # Completion events; None: nothing is announced (and no record marks one pending).
        self.events = events
        self.cdn_base_url = cdn_base_url  # the URLs in an event's image view
        self.clocks = clocks or ProcessClocks()
        self.cpu_share = cpu_share
        self.retry_queue = retry_queue
        self.retry_delay_s = retry_delay_s
        # Rendition PUTs go out together: four sequential round trips to S3 would add their
        # latencies to every image. Clients are thread-safe; the pool lives with the service.
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="imgpipe-put")
        self._eraser = Eraser(store=store, cdn=cdn, bucket=bucket, public_prefix=public_prefix)

    # --- entry ---------------------------------------------------------------------------

    def handle(self, event: ObjectEvent, *, time_budget_s: float | None = None) -> Outcome:
        """Apply one event. Raises TransientError (retry); everything else is an Outcome.

        ``time_budget_s``: the seconds the image may compute, when the caller has less time
        than the configured budget (the handler: what is left of the invocation)."""
        iid = image_id(event.bucket, event.key)
        refused = admit(event, bucket=self.bucket, raw_prefix=self.raw_prefix, sources=self.sources)
        if refused is not None:
            return self._skipped(refused, iid, expected=self.bucket)
        if event.kind in REMOVALS:
            return self._remove(event, iid)
        return self._create(event, iid, time_budget_s)

    def first_sight(self, event: ObjectEvent) -> None:
        """Record a new upload as ``processing`` (no try yet) if it has no record: the
        handler does it for a batch's uploads before any image starts, so each has its record
        from the moment an invocation holds its message, whatever happens to the invocation."""
        refused = admit(event, bucket=self.bucket, raw_prefix=self.raw_prefix)
        if event.kind is not Kind.created or refused is not None:
            return
        try:
            self.repo.begin(
                image_id=image_id(event.bucket, event.key),
                bucket=event.bucket,
                source_key=event.key,
                now=self._now(),
            )
        except StaleEvent:
            return  # seen, then deleted, in between: the delete's record stands

    # --- created / reprocess -------------------------------------------------------------

    def _create(self, event: ObjectEvent, iid: str, time_budget_s: float | None) -> Outcome:
        current = self._flush(self.repo.get(iid))
        skip = screen(event, current, self.config)
        if skip is not None:
            return self._skipped(skip, iid, current)
        created = current is None
        if current is None or current.status is Status.processing:
            # The try starts: counted before anything heavy (the source's read included: a
            # stalled GET can outlast the invocation), so a delivery after an invocation that
            # died with it knows.
            current = self.repo.take_up(
                image_id=iid,
                bucket=event.bucket,
                source_key=event.key,
                now=self._now(),
                exists=current is not None,
            )
            if current is None:
                raise TransientError("the record changed while this try started")
        counted = current.tries if current.status is Status.processing else None
        stopped = interrupted(event_tries=event.tries, counted=counted)
        if stopped >= MAX_INTERRUPTED:
            return self._interrupted(event, current, stopped)
        tries = this_try(event_tries=event.tries, counted=counted)
        started = time.perf_counter()
        try:
            with ExitStack() as stack:
                try:
                    source = stack.enter_context(
                        self.store.open(event.bucket, event.key, etag=event.etag)
                    )
                except StaleEvent:
                    # Only here does StaleEvent mean "superseded": open() with the event's
                    # ETag found other bytes, a newer upload whose own event is (or was)
                    # processed. A StaleEvent later is a lost race, reported as one.
                    log.info("the object was replaced since this event: skipped")
                    return Outcome(Action.skipped, iid, Reason.superseded)
                return self._apply(event, current, source, started, time_budget_s, tries)
        except SourceMissing:
            if created and not self._owned(event.bucket, event.key):
                # An original read in place gets no delete event of ours to settle the
                # record this try began: gone before it was read, it leaves none.
                self.repo.forget_unread(iid)
                log.info("the object is gone: skipped, no record left")
            else:
                log.info("the object is gone: skipped (its delete event cleans up)")
            return Outcome(Action.skipped, iid, Reason.source_missing)
        except Exception:
            # The queue brings the message back: this was no try. Best effort: a try left
            # counted only brings the image closer to being failed ``interrupted``.
            if counted is not None:
                try:
                    self.repo.put_back(iid)
                except TransientError as e:
                    log.warning("could not put the try back", extra={"error": e.message})
            raise

    def _interrupted(self, event: ObjectEvent, current: ImageRecord, stopped: int) -> Outcome:
        """Every try so far was stopped with its invocation: fail the image rather than leave
        it ``processing`` until its message reaches the dead-letter queue."""
        error = ProcessingInterrupted(
            f"processing was stopped {stopped} times before it could finish: the function "
            "ran out of time or memory with this image in hand; a function with more memory "
            "(and so more CPU) may finish it (then reprocess it)"
        )
        return self._fail(event, current, error, time.perf_counter(), event.tries + stopped)

    def _apply(
        self,
        event: ObjectEvent,
        current: ImageRecord,
        source: SourceObject,
        started: float,
        time_budget_s: float | None,
        tries: int,
    ) -> Outcome:
        """Read the bytes, decide, then derive, reuse or keep; a bad image is recorded failed."""
        base = current
        if base.status is Status.processing and base.uploader is None and source.uploader:
            # First sight is recorded before the object is read; its uploader is known now.
            base = base.model_copy(update={"uploader": source.uploader})
        iid = base.id
        # Where one image's time goes (ms): S3 read, engine decode and encode, S3 writes and
        # the DynamoDB commit. Logged on "image done" and kept on the record.
        timings: dict[str, float] = {}
        try:
            _check_size(source.size, self.config.limits.max_input_bytes)
            mark = time.perf_counter()
            with self.engine.spool(source.stream) as spooled:
                timings["s3_read"] = _ms_since(mark)
                decision = decide(
                    event, base, spooled.sha256, self.config, self._donors(spooled.sha256)
                )
                if isinstance(decision, Skip):
                    return self._skipped(decision, iid, base, input_bytes=source.size)
                if isinstance(decision, Unchanged):
                    return self._unchanged(base, event.sequencer, source.size)
                made = self._reuse(decision) if isinstance(decision, Reuse) else None
                if made is None:
                    before = self.clocks.read()
                    try:
                        made = self._derive(
                            event, iid, spooled, decision.version, timings, time_budget_s
                        )
                    except TimeBudgetExceeded as e:
                        used = self.clocks.read() - before
                        return self._timed_out(event, base, e, source, started, tries, used)
        except ImageRejected as e:
            return self._fail(event, base, e, started, tries, source)
        return self._done(event, base, made, source, started, timings, tries)

    def _timed_out(
        self,
        event: ObjectEvent,
        base: ImageRecord,
        error: TimeBudgetExceeded,
        source: SourceObject,
        started: float,
        tries: int,
        used: Reading,
    ) -> Outcome:
        """Out of time: starved of CPU, it comes back later, alone; heavy, it is failed."""
        share = self.cpu_share
        ratio = {"cpu_s": round(used.cpu, 3), "wall_s": round(used.wall, 3), "cpu_share": share}
        if self.retry_queue is not None and retry_starved(used, share, tries):
            self.retry_queue.send_later(
                retry_message(event, tries),
                delay_s=self.retry_delay_s,
                attributes={TRIES_ATTRIBUTE: str(tries)},
            )
            log.warning(
                "starved of CPU: tried again later, alone",
                extra={**ratio, "try": tries, "retry_in_s": self.retry_delay_s},
            )
            info = ErrorInfo(code=error.code, message=error.message)
            return Outcome(
                Action.retried,
                base.id,
                Reason.starved,
                error=info,
                input_bytes=source.size,
                processing_ms=_ms_since(started),
                tries=tries,
            )
        if starved(used, share):
            log.warning("starved of CPU on its last try: the timeout is final", extra=ratio)
            error = TimeBudgetExceeded(
                f"{error.message}; on try {tries} it got {cpu_ratio(used):.0%} of a CPU "
                "(starved by other work), so it may finish when the machine is less loaded"
            )
        return self._fail(event, base, error, started, tries, source)

    def _donors(self, sha256: str) -> Iterator[ImageRecord]:
        """Records with the same bytes, queried only if ``decide`` gets as far as asking."""
        yield from self.repo.find_by_sha256(sha256)

    def _derive(
        self,
        event: ObjectEvent,
        iid: str,
        spooled: Spooled,
        version: str,
        timings: dict[str, float],
        time_budget_s: float | None,
    ) -> _Made:
        """Decode once, encode every rendition, PUT them all (waiting for every PUT)."""
        result = self.engine.process(
            spooled,
            image_id=iid,
            versioned=True,
            source_name=event.key,
            time_budget_s=time_budget_s,
        )
        timings["decode"] = result.timings.get("decode", 0.0)
        timings["encode"] = result.timings.get("encode", 0.0)
        timings["score"] = result.timings.get("score", 0.0)
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
        timings["s3_write"] = _ms_since(mark)
        return _Made(
            renditions=[o.info for o in result.outputs],
            facts=result.facts,
            version=result.content_version or version,
        )

    def _reuse(self, decision: Reuse) -> _Made | None:
        """A server-side copy per rendition instead of a decode and encodes.

        A donor that vanishes mid-copy is abandoned (what was copied is removed) and the next
        tried; None when none is left, and the image is derived after all.
        """
        for donor in decision.donors:
            if self._copy(donor):
                return _Made(
                    renditions=[c.rendition for c in donor.copies],
                    facts=donor.record.facts,
                    version=decision.version,
                    reused_from=donor.record.id,
                )
        return None

    def _copy(self, donor: Donor) -> bool:
        copied: list[str] = []
        try:
            for copy in donor.copies:
                self.store.copy(
                    self.bucket,
                    self.public_prefix + copy.source_key,
                    self.public_prefix + copy.rendition.key,
                    content_type=copy.rendition.content_type,
                    cache_control=IMMUTABLE,
                )
                copied.append(copy.rendition.key)
        except SourceMissing:
            log.info("dedupe donor vanished mid-copy", extra={"donor": donor.record.id})
            self._delete_quietly(copied)
            return False
        return True

    def _done(
        self,
        event: ObjectEvent,
        base: ImageRecord,
        made: _Made,
        source: SourceObject,
        started: float,
        timings: dict[str, float],
        tries: int,
    ) -> Outcome:
        size = source.size
        record = base.done(
            now=self._now(),
            sequencer=event.sequencer,
            config_version=self.config.version,
            content_version=made.version,
            facts=made.facts,
            renditions=made.renditions,
            processing_ms=_ms_since(started),
            timings=timings,
            tries=tries,
        ).model_copy(update={"source_etag": source.etag})
        mark = time.perf_counter()
        committed = self._commit(record, [r.key for r in made.renditions])
        timings["dynamodb"] = _ms_since(mark)
        if committed is None:
            return Outcome(Action.skipped, base.id, Reason.stale, input_bytes=size)
        log.info(
            "image done",
            extra={
                "renditions": len(made.renditions),
                "reused_from": made.reused_from,
                "ms": record.processing_ms,
                "timings": timings,
                "tries": tries,
            },
        )
        return Outcome(
            Action.done,
            base.id,
            Reason.reused if made.reused_from else Reason.derived,
            input_bytes=size,
            output_bytes=sum(r.bytes for r in made.renditions),
            processing_ms=record.processing_ms,
            reused_from=made.reused_from,
            orphaned=committed,
            tries=tries,
        )

    def _unchanged(self, base: ImageRecord, sequencer: str | None, size: int) -> Outcome:
        """Same bytes, same config, already done: keep the renditions, move the order on."""
        sequencer = sequencer or base.sequencer
        if sequencer != base.sequencer:
            # Not a new state (no event), but a new version: a save needs a greater one.
            advanced = base.model_copy(
                update={
                    "sequencer": sequencer,
                    "updated_at": self._now(),
                    "version": base.version + 1,
                }
            )
            try:
                self.repo.save(advanced)
            except StaleEvent:
                return Outcome(Action.skipped, base.id, Reason.stale, input_bytes=size)
        log.info("same bytes and config as the stored renditions: nothing to derive")
        return Outcome(Action.skipped, base.id, Reason.unchanged, input_bytes=size)

    def _fail(
        self,
        event: ObjectEvent,
        base: ImageRecord,
        error: ImageRejected,
        started: float,
        tries: int,
        source: SourceObject | None = None,
    ) -> Outcome:
        """The image itself is bad: record why, keep the message from being retried.
        ``source``: the object read, when it was (its size is counted, its ETag kept)."""
        size = source.size if source is not None else 0
        info = ErrorInfo(code=error.code, message=error.message)
        record = base.failed(
            now=self._now(),
            sequencer=event.sequencer,
            config_version=self.config.version,
            error=info,
            processing_ms=_ms_since(started),
            tries=tries,
        ).model_copy(update={"source_etag": source.etag if source is not None else None})
        committed = self._commit(record, written=[])
        if committed is None:
            return Outcome(Action.skipped, base.id, Reason.stale, input_bytes=size)
        log.warning(
            "image rejected", extra={"error_code": info.code, "error": info.message, "tries": tries}
        )
        return Outcome(
            Action.failed,
            base.id,
            Reason.rejected,
            error=info,
            input_bytes=size,
            processing_ms=record.processing_ms,
            orphaned=committed,
            tries=tries,
        )

    # --- removed -------------------------------------------------------------------------

    def _remove(self, event: ObjectEvent, iid: str) -> Outcome:
        current = self._flush(self.repo.get(iid))
        # Only an event without order needs S3's word (a stale check cannot apply to it); an
        # original read in place stays where it is, and its removal is the forget message's.
        owned = self._owned(event.bucket, event.key)
        exists = event.sequencer is None and owned and self.store.exists(event.bucket, event.key)
        decision = decide_removal(event, current, object_exists=exists)
        if isinstance(decision, Skip):
            if decision.reason is Reason.duplicate:
                # A redelivery, maybe after erasing failed: erasing again finds what is left.
                self._erase(iid, event.key if owned else None, current)
            return self._skipped(decision, iid, current)
        now = self._now()
        base = current or ImageRecord.first_sight(
            image_id=iid, bucket=event.bucket, source_key=event.key, now=now
        )
        record = base.deleted(now=now, sequencer=event.sequencer)
        committed = self._commit(record, written=[])
        if committed is None:
            return Outcome(Action.skipped, iid, Reason.stale)
        self._erase(iid, event.key if owned else None, current)
        log.info("image deleted")
        return Outcome(Action.deleted, iid, Reason.removed, orphaned=committed)

    def _owned(self, bucket: str, key: str) -> bool:
        """An upload (under the raw prefix of this bucket), not an original read in place."""
        return bucket == self.bucket and key.startswith(self.raw_prefix)

    def _erase(self, iid: str, source_key: str | None, current: ImageRecord | None) -> None:
        """Every version of the original (None: read in place, never erased) and of the
        renditions, and the CDN's copies (erase.py).

        The config's folders, the stored renditions' (a config change may have moved
        them) and the folder of sizes made on demand (whether or not the record lists them:
        a size made while the image was deleted is listed nowhere). Raises TransientError:
        the message is retried, and erasing resumes.
        """
        folders = {spec.folder for spec in self.config.renditions} | {SIZES_FOLDER}
        if current is not None:
            folders.update(f for r in current.renditions if (f := rendition_folder(r.key)))
        self._eraser.erase(iid, source_key, folders)

    # --- shared --------------------------------------------------------------------------

    def _skipped(
        self,
        skip: Skip,
        iid: str,
        current: ImageRecord | None = None,
        *,
        input_bytes: int = 0,
        expected: str | None = None,
    ) -> Outcome:
        note = _SKIP_NOTES.get(skip.reason, f"skipped: {skip.reason}")
        if skip.reason in _REFUSALS:
            log.warning(note, extra={"expected": expected} if expected else None)
        else:
            stored = (
                {"stored_sequencer": current.sequencer, "status": current.status}
                if current is not None
                else None
            )
            log.info(note, extra=stored)
        return Outcome(Action.skipped, iid, skip.reason, input_bytes=input_bytes)

    def _commit(self, record: ImageRecord, written: Sequence[str]) -> tuple[str, ...] | None:
        """Save ``record``; then delete what it replaced. None when a newer state won.

        Returns the rendition keys that should have been deleted but could not be (orphans).
        The new state's event (and one the replaced state still owed) is published here.
        """
        if self.events is None:
            record = record.model_copy(update={"pending_event": None})
        try:
            saved, replaced = self._save(record)
        except StaleEvent:
            # A newer event won the race: remove what this one wrote, unless the winner
            # lists the same keys (same bytes and config give the same keys).
            winner = self.repo.get(record.id)
            keep = {r.key for r in winner.renditions} if winner else set()
            log.info("a newer event was applied first: this one is dropped")
            self._delete_quietly(k for k in written if k not in keep)
            return None
        if saved is None:
            return ()  # the same state was saved by another write: nothing more to do
        self._announce(replaced, saved)
        if replaced is None:
            return ()
        keep = {r.key for r in saved.renditions}
        return self._delete_quietly(r.key for r in replaced.renditions if r.key not in keep)

    def _save(self, record: ImageRecord) -> tuple[ImageRecord | None, ImageRecord | None]:
        """``repo.save`` through a race with a write of the same or an older event: (the
        record saved, the one it replaced). As before versions, the later save wins, now
        with the next version; unless the winner holds this very state, which then needs no
        second write and no second event: (None, None)."""
        for _ in range(_SAVE_ATTEMPTS):
            try:
                return record, self.repo.save(record)
            except ConcurrentWrite:
                winner = self.repo.get(record.id)
                if winner is None:
                    raise
                if _same_state(winner, record):
                    log.info("another write saved this very state first")
                    return None, None
                record = record.model_copy(update={"version": winner.version + 1})
        raise ConcurrentWrite(f"image {record.id}: {_SAVE_ATTEMPTS} writes raced; retried")

    def _flush(self, current: ImageRecord | None) -> ImageRecord | None:
        """Publish the event a stored state still owes (a crash came between its save and
        its publication); the record as it now is."""
        if current is None or current.pending_event is None or self.events is None:
            return current
        log.info("publishing the event of an earlier attempt", extra={"version": current.version})
        self._announce(current)
        return current.model_copy(update={"pending_event": None})

    def _announce(self, *records: ImageRecord | None) -> None:
        """Publish the pending events of these records, oldest first, then clear their marks.
        Raises TransientError: the marks stay, and the message's retry publishes them."""
        pending = [r for r in records if r is not None and r.pending_event is not None]
        if self.events is None or not pending:
            return
        self.events.publish([announcement(r, self.cdn_base_url) for r in pending])
        for record in pending:
            self.repo.settle_event(record.id, record.version)

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


_SAVE_ATTEMPTS = 3


def _same_state(a: ImageRecord, b: ImageRecord) -> bool:
    """Two writes that say the same thing: status, order, config and content."""
    return (a.status, a.sequencer, a.config_version, a.content_version, a.error) == (
        b.status,
        b.sequencer,
        b.config_version,
        b.content_version,
        b.error,
    )


def _check_size(size: int, limit: int) -> None:
    """From Content-Length, before a byte is read: refuse cheaply what the engine would."""
    if size == 0:
        raise EmptyImage("the upload is empty (0 bytes)")
    check_bytes(size, limit)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
