"""In-memory fakes of the processor's storage ports (object store, image table, CDN, event
bus): the service's tests need no AWS.

They keep the adapters' contracts (processor/core/ports.py): the same errors for the
same situations, the same conditional-write rule on sequencers.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from processor.core.changes import Announcement
from processor.core.errors import (
    ConcurrentWrite,
    PipelineError,
    SourceMissing,
    StaleEvent,
    TransientError,
)
from processor.core.ports import ObjectVersion, SourceObject
from processor.core.record import ImageRecord, Status
from processor.service.images import ProcessorService
from tests.fakes.records import FakeReader

# --- object store ----------------------------------------------------------------------------


@dataclass
class StoredObject:
    data: bytes
    content_type: str = "application/octet-stream"
    cache_control: str | None = None
    version_id: str = "null"

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data).hexdigest()  # S3's ETag of a simple PUT


@dataclass
class MemoryStore:
    """ObjectStore in a dict, versioned like the template's bucket: an overwrite or a delete
    keeps the old bytes as a noncurrent version, a delete adds a delete marker.
    ``failures[method] = n`` makes the next n calls transient."""

    objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    # Noncurrent versions and delete markers per key, oldest first: (version id, is a marker).
    history: dict[tuple[str, str], list[tuple[str, bool]]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def _store(self, bucket: str, key: str, obj: StoredObject) -> None:
        old = self.objects.get((bucket, key))
        if old is not None:
            self.history.setdefault((bucket, key), []).append((old.version_id, False))
        obj.version_id = f"v{next(self._ids)}"
        self.objects[(bucket, key)] = obj

    def upload(self, bucket: str, key: str, data: bytes) -> str:
        self._store(bucket, key, StoredObject(data))
        return self.objects[(bucket, key)].etag

    def _call(self, method: str, key: str) -> None:
        with self._lock:
            self.calls.append((method, key))
            if self.failures.get(method, 0) > 0:
                self.failures[method] -= 1
                raise TransientError(f"{method} {key}: SlowDown (injected)")

    @contextmanager
    def open(self, bucket: str, key: str, *, etag: str | None = None) -> Iterator[SourceObject]:
        self._call("open", key)
        obj = self.objects.get((bucket, key))
        if obj is None:
            raise SourceMissing(f"GetObject s3://{bucket}/{key}: NoSuchKey")
        if etag is not None and etag != obj.etag:
            raise StaleEvent(f"GetObject s3://{bucket}/{key}: PreconditionFailed")
        yield SourceObject(io.BytesIO(obj.data), len(obj.data), obj.etag)

    def exists(self, bucket: str, key: str) -> bool:
        self._call("exists", key)
        return (bucket, key) in self.objects

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str
    ) -> None:
        self._call("put", key)
        self._store(bucket, key, StoredObject(data, content_type, cache_control))

    def copy(
        self, bucket: str, source_key: str, key: str, *, content_type: str, cache_control: str
    ) -> None:
        self._call("copy", key)
        source = self.objects.get((bucket, source_key))
        if source is None:
            raise SourceMissing(f"CopyObject s3://{bucket}/{source_key}: NoSuchKey")
        self._store(bucket, key, StoredObject(source.data, content_type, cache_control))

    def delete(self, bucket: str, keys: Sequence[str]) -> None:
        self._call("delete", ",".join(keys))
        for key in keys:
            old = self.objects.pop((bucket, key), None)
            history = self.history.setdefault((bucket, key), [])
            if old is not None:
                history.append((old.version_id, False))
            history.append((f"m{next(self._ids)}", True))

    def list_versions(self, bucket: str, prefix: str) -> list[ObjectVersion]:
        self._call("list_versions", prefix)
        out: list[ObjectVersion] = []
        keys = {k for (b, k) in [*self.objects, *self.history] if b == bucket}
        for key in sorted(k for k in keys if k.startswith(prefix)):
            live = self.objects.get((bucket, key))
            history = self.history.get((bucket, key), [])
            for n, (vid, marker) in enumerate(history):
                latest = live is None and n == len(history) - 1
                out.append(ObjectVersion(key, vid, latest, marker))
            if live is not None:
                out.append(ObjectVersion(key, live.version_id, True, False))
        return out

    def delete_versions(self, bucket: str, versions: Sequence[ObjectVersion]) -> None:
        self._call("delete_versions", ",".join(v.key for v in versions))
        for v in versions:
            live = self.objects.get((bucket, v.key))
            if live is not None and live.version_id == v.version_id:
                del self.objects[(bucket, v.key)]
            history = self.history.get((bucket, v.key), [])
            history[:] = [h for h in history if h[0] != v.version_id]
            if not history:
                self.history.pop((bucket, v.key), None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for (_, k) in self.objects if k.startswith(prefix))

    def all_versions(self, prefix: str = "") -> list[str]:
        """Every key with any version or marker left (the bucket as a purge sees it)."""
        return sorted({k for (_, k) in [*self.objects, *self.history] if k.startswith(prefix)})


@dataclass
class MemoryCdn:
    """CdnInvalidator that records each request; ``failures`` refusals first (``refusal``:
    TransientError by default, CdnBusy for a distribution with too many in progress)."""

    invalidations: list[list[str]] = field(default_factory=list)
    failures: int = 0
    refusal: type[PipelineError] = TransientError

    def invalidate(self, paths: Sequence[str]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise self.refusal("CreateInvalidation: TooManyInvalidationsInProgress (injected)")
        self.invalidations.append(list(paths))


# --- repository ------------------------------------------------------------------------------


class MemoryRepo(FakeReader):
    """ImageRepository: the shared reader (tests/fakes/records.py) plus writes, with DynamoDB's
    conditional-write rule on sequencers. ``failures[method] = n``: the next n calls throttle."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, int] = {}
        self.saves = 0
        self._lock = threading.RLock()

    def _call(self, method: str) -> None:
        if self.failures.get(method, 0) > 0:
            self.failures[method] -= 1
            raise TransientError(f"{method}: ThrottlingException (injected)")

    def get(self, image_id: str) -> ImageRecord | None:
        self._call("get")
        return super().get(image_id)

    def find_by_sha256(self, sha256: str) -> list[ImageRecord]:
        self._call("find_by_sha256")
        return [r for r in self.records.values() if r.facts and r.facts.sha256 == sha256]

    def begin(
        self,
        *,
        image_id: str,
        bucket: str,
        source_key: str,
        now: str,
        uploader: str | None = None,
    ) -> ImageRecord:
        self._call("begin")
        with self._lock:
            if image_id not in self.records:
                self.records[image_id] = ImageRecord.first_sight(
                    image_id=image_id,
                    bucket=bucket,
                    source_key=source_key,
                    now=now,
                    uploader=uploader,
                )
            return self.records[image_id]

    def take_up(
        self, *, image_id: str, bucket: str, source_key: str, now: str, exists: bool = False
    ) -> ImageRecord | None:
        self._call("take_up")
        with self._lock:
            stored = self.records.get(image_id)
            if stored is None:
                stored = ImageRecord.first_sight(
                    image_id=image_id, bucket=bucket, source_key=source_key, now=now
                )
            elif stored.status is not Status.processing:
                return None
            self.records[image_id] = stored.model_copy(update={"tries": (stored.tries or 0) + 1})
            return self.records[image_id]

    def put_back(self, image_id: str) -> None:
        self._call("put_back")
        with self._lock:
            stored = self.records.get(image_id)
            if stored is not None and stored.status is Status.processing and stored.tries:
                self.records[image_id] = stored.model_copy(update={"tries": stored.tries - 1})

    def forget_unread(self, image_id: str) -> None:
        self._call("forget_unread")
        with self._lock:
            stored = self.records.get(image_id)
            if stored is not None and stored.status is Status.processing and not stored.renditions:
                del self.records[image_id]

    def save(self, record: ImageRecord) -> ImageRecord | None:
        self._call("save")
        with self._lock:
            old = self.records.get(record.id)
            if old is not None and old.sequencer is not None:
                if record.sequencer is None or old.sequencer > record.sequencer:
                    raise StaleEvent(f"PutItem {record.id}: ConditionalCheckFailedException")
            if old is not None and old.version >= record.version:
                raise ConcurrentWrite(f"PutItem {record.id}: another write came first")
            self.records[record.id] = record
            self.saves += 1
            return old

    def settle_event(self, image_id: str, version: int) -> None:
        self._call("settle_event")
        with self._lock:
            stored = self.records.get(image_id)
            if stored is not None and stored.version == version:
                self.records[image_id] = stored.model_copy(update={"pending_event": None})


@dataclass
class MemoryBus:
    """EventPublisher that keeps what it was given; ``failures`` transient refusals first."""

    published: list[Announcement] = field(default_factory=list)
    failures: int = 0

    def publish(self, announcements: Sequence[Announcement]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("PutEvents: ThrottlingException (injected)")
        self.published.extend(announcements)


# --- the queue a starved try comes back on ------------------------------------------------------


@dataclass
class SentLater:
    body: str
    delay_s: int
    attributes: dict[str, str]


@dataclass
class MemoryRetryQueue:
    """RetryQueue: what was sent, in order. ``failures = n``: the next n sends are throttled."""

    sent: list[SentLater] = field(default_factory=list)
    failures: int = 0

    def send_later(self, body: str, *, delay_s: int, attributes: Mapping[str, str]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("SendMessage: RequestThrottled (injected)")
        self.sent.append(SentLater(body, delay_s, dict(attributes)))


def fake_service(
    store: MemoryStore, repo: MemoryRepo, engine: Any, **options: Any
) -> ProcessorService:
    """The service on in-memory fakes: bucket ``bkt``, prefixes ``raw/`` and ``public/``, the
    engine's config; ``options`` as ProcessorService takes them (cdn, clock, clocks, ...)."""
    return ProcessorService(
        store=store,
        repo=repo,
        engine=engine,
        config=engine.config,
        bucket="bkt",
        raw_prefix="raw/",
        public_prefix="public/",
        **options,
    )
