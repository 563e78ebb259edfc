"""Make a size on its first request: the CDN's miss, made once, stored, and served.

The CDN asks S3 first; only a miss comes here (docs/sizes.md). For one path:

1. parse it against the allowed set (processor/core/sizes.py): anything else is refused
   before a record or a byte is read;
2. read the record: the image must be done at the path's content version;
3. if the file exists already (a miss that raced its making), serve it;
4. claim the size on the image's item (a conditional write): of any number of concurrent
   misses, one claims it and makes it; the others wait for its file and serve that;
5. make it with the engine from the best stored source (processor/rules/sizes.py), under
   the same limits, write it under the public prefix with the renditions' headers, and add
   it to the record (a conditional update: listed once, and only while the image is still
   done at that version; otherwise the file is deleted again).

Ports only (ObjectStore, SizeClaims, Renderer): no boto3, no libvips.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from processor.core.errors import (
    NoSuchRendition,
    OnDemandLimit,
    RenditionInProgress,
    SizeNotAllowed,
    SourceMissing,
)
from processor.core.keys import CONTENT_TYPES
from processor.core.ports import IMMUTABLE, ObjectStore, Renderer, SizeClaims
from processor.core.record import ImageRecord, RenditionInfo, Status
from processor.core.sizes import OnDemandConfig, Size, on_demand_formats, parse
from processor.rules.sizes import best_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    key: str  # relative to the public prefix: the CDN path without its '/'
    data: bytes
    content_type: str
    cache_control: str
    made: bool  # this request made it (False: it was stored, or another request made it)


class CallerWindow:
    """Sizes made per caller per minute, in this process (a function instance): a fixed
    window, best effort; the function's reserved concurrency bounds all callers together."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        with self._lock:
            window = int(self._clock() // 60)
            if window != self._window:
                self._window, self._counts = window, {}
            used = self._counts.get(caller, 0)
            if used >= self.per_minute:
                raise OnDemandLimit("too many new sizes asked for from here; try in a minute")
            self._counts[caller] = used + 1


class OnDemand:
    def __init__(
        self,
        *,
        store: ObjectStore,
        claims: SizeClaims,
        engine: Renderer,
        config: OnDemandConfig,
        bucket: str,
        public_prefix: str,
        time_budget_s: float | None = None,
        wait_s: float = 20.0,  # how long a request waits for another's making
        claim_ttl_s: int = 120,  # a claim older than this was abandoned: claim it again
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.claims = claims
        self.engine = engine
        self.config = config
        self.bucket = bucket
        self.public_prefix = public_prefix
        self.time_budget_s = time_budget_s
        self.wait_s = wait_s
        self.claim_ttl_s = claim_ttl_s
        self._clock = clock
        self._sleep = sleep
        self.callers = CallerWindow(config.max_per_caller_minute)

    def serve(self, path: str, caller: str | None = None) -> Served:
        size = parse(path, self.config)  # refused here: nothing read yet
        record = self.claims.get(size.image_id)
        if (
            record is None
            or record.status is not Status.done
            or record.content_version != size.version
            or record.facts is None
        ):
            raise NoSuchRendition(f"no such rendition: {size.key}")
        if size.format not in on_demand_formats(record.facts.has_alpha, self.config):
            raise SizeNotAllowed(
                f"this image has transparency: .{size.key.rsplit('.', 1)[1]} cannot carry it"
            )
        stored = self._read(size)
        if stored is not None:
            return stored
        if caller is not None:
            # Counted before the claim: a refused caller leaves no claim to wait out.
            self.callers.take(caller)
        now = int(self._clock())
        claimed = self.claims.claim_size(
            size.image_id,
            key=size.key,
            content_version=size.version,
            now=now,
            stale_before=now - self.claim_ttl_s,
            max_per_image=self.config.max_per_image,
        )
        if not claimed:
            return self._wait_for(size)
        return self._make(size, record)

    def _make(self, size: Size, record: ImageRecord) -> Served:
        assert record.facts is not None
        source = best_source(record.facts, record.renditions, size)
        if source is None:
            bucket, key = record.bucket or self.bucket, record.source_key
        else:
            bucket, key = self.bucket, self.public_prefix + source.key
        started = time.perf_counter()
        with self.store.open(bucket, key) as obj:
            made = self.engine.render(
                obj.stream, size.spec(self.config), time_budget_s=self.time_budget_s
            )
        content_type = CONTENT_TYPES[made.format]
        if made.format != size.format:  # never another format's bytes under this name
            raise SizeNotAllowed(f"this image cannot be made as .{size.key.rsplit('.', 1)[1]}")
        self.store.put(
            self.bucket,
            self.public_prefix + size.key,
            made.data,
            content_type=content_type,
            cache_control=IMMUTABLE,
        )
        info = RenditionInfo(
            name=size.name,
            key=size.key,
            format=made.format,
            content_type=content_type,
            width=made.width,
            height=made.height,
            bytes=len(made.data),
            animated=made.animated,
            on_demand=True,
        )
        if not self.claims.add_size(size.image_id, content_version=size.version, info=info):
            now = self.claims.get(size.image_id)
            if now is None or now.status is not Status.done or now.content_version != size.version:
                # The image moved on while this was made: its file must not outlive it.
                self.store.delete(self.bucket, [self.public_prefix + size.key])
                raise NoSuchRendition(f"no such rendition: {size.key}")
        log.info(
            "size made on demand",
            extra={
                "key": size.key,
                "from": source.key if source else "original",
                "bytes": len(made.data),
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return Served(size.key, made.data, content_type, IMMUTABLE, made=True)

    def _read(self, size: Size) -> Served | None:
        try:
            with self.store.open(self.bucket, self.public_prefix + size.key) as obj:
                data = obj.stream.read()
        except SourceMissing:
            return None
        return Served(size.key, data, CONTENT_TYPES[size.format], IMMUTABLE, made=False)

    def _wait_for(self, size: Size) -> Served:
        """Another request claimed it: its file, once written, or 503 to ask again."""
        deadline = time.monotonic() + self.wait_s
        delay = 0.05
        while time.monotonic() < deadline:
            self._sleep(delay)
            stored = self._read(size)
            if stored is not None:
                return stored
            delay = min(delay * 2, 0.5)
        raise RenditionInProgress(f"{size.key} is being made; ask again in a moment")
