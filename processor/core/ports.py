"""Ports: what the services need from the world, by role. Adapters (processor/aws/) implement
them with boto3; the unit tests with in-memory fakes.

Every method raises only project errors (processor/core/errors.py), never an SDK type:

- ``SourceMissing``: the object is gone (skip, do not retry);
- ``StaleEvent``: a newer state already exists (drop this event);
- ``TransientError``: throttling, 5xx, timeouts, lost connections (let the queue retry).

Who uses what: the API reads records (``ImageReader``), presigns uploads and deletes
(``UploadStore``) and queues reprocessing (``Queue``); the processor reads sources and writes
renditions (``ObjectStore``), writes records (``ImageRepository``), runs the engine
(``ImageEngine``), measures what the engine got of the CPU (``Clocks``) and brings a starved
image back later (``RetryQueue``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import IO, Any, Protocol

from processor.core.changes import Announcement
from processor.core.config import RenditionSpec
from processor.core.record import ImageFacts, ImageRecord, RenditionInfo, ScoreRange, Status

# --- records: the read side, shared by the API and the processor -----------------------------


@dataclass(frozen=True)
class Page:
    items: list[ImageRecord]
    # Where the next page starts: the store's own position (DynamoDB: the sort key the next
    # page starts below and the index shards already at their end; all string values). None
    # on the last page. The API signs it into an opaque cursor.
    next_position: dict[str, str] | None = field(default=None)


class ImageReader(Protocol):
    def get(self, image_id: str) -> ImageRecord | None: ...

    def list_images(
        self,
        *,
        status: Status | None = None,
        limit: int = 50,
        position: dict[str, str] | None = None,
        uploader: str | None = None,
        scores: ScoreRange | None = None,
    ) -> Page:
        """Newest first (by created_at, then id). Without a status, deleted images are left out.

        With ``uploader``, only the images that uploader uploaded (the record's ``uploader``).
        With ``scores``, only the images whose worst rendition score is in that range; a page
        may then hold fewer than ``limit`` images (even none) and still have a next one.
        """
        ...


# --- the processor's side ---------------------------------------------------------------------

# Rendition keys carry a content version, so a URL never changes meaning: cache it forever.
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class SourceObject:
    """An open S3 object: read ``stream`` once, front to back."""

    stream: IO[bytes]
    size: int  # bytes (Content-Length)
    etag: str | None = None  # without quotes
    uploader: str | None = None  # who asked for the upload (keys.UPLOADER_METADATA), if known


@dataclass(frozen=True)
class StoredObject:
    """An object's headers and, from a read, its body (a stream with ``iter_chunks`` and
    ``close``); the local CDN stand-in serves it as CloudFront would."""

    etag: str  # with its quotes, as S3 sends it
    size: int  # bytes of this response (of the range, for a ranged read)
    content_type: str | None = None
    cache_control: str | None = None
    last_modified: datetime | None = None
    content_range: str | None = None  # "bytes a-b/n" for a ranged read
    body: Any = None


@dataclass(frozen=True)
class ObjectVersion:
    """One version of a key in a versioned bucket: an object or a delete marker."""

    key: str
    version_id: str  # "null" for what was written before versioning was enabled
    is_latest: bool  # the key's current version
    is_delete_marker: bool = False


class ObjectStore(Protocol):
    def open(
        self, bucket: str, key: str, *, etag: str | None = None
    ) -> AbstractContextManager[SourceObject]:
        """Stream an object. With ``etag``, only those bytes: StaleEvent if it was replaced."""
        ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str
    ) -> None: ...

    def copy(
        self,
        bucket: str,
        source_key: str,
        key: str,
        *,
        content_type: str,
        cache_control: str,
    ) -> None:
        """Server-side copy; SourceMissing if ``source_key`` is gone."""
        ...

    def delete(self, bucket: str, keys: Sequence[str]) -> None:
        """Delete every key (missing ones are fine: deleting is idempotent)."""
        ...

    def list_versions(self, bucket: str, prefix: str) -> list[ObjectVersion]:
        """Every version and delete marker of the keys under ``prefix``."""
        ...

    def delete_versions(self, bucket: str, versions: Sequence[ObjectVersion]) -> None:
        """Delete these versions for good (missing ones are fine)."""
        ...


class CdnInvalidator(Protocol):
    """The CDN in front of the public prefix: forget cached copies of these paths."""

    def invalidate(self, paths: Sequence[str]) -> None:
        """Paths as the CDN serves them (``/thumbs/<file>``, ``/thumbs/<id>*``).

        Raises TransientError when the CDN keeps refusing (throttled, too many in progress).
        """
        ...


class ImageRepository(ImageReader, Protocol):
    """The image table: the read side above plus the processor's writes."""

    def begin(
        self,
        *,
        image_id: str,
        bucket: str,
        source_key: str,
        now: str,
        uploader: str | None = None,
    ) -> ImageRecord:
        """The stored record; on first sight, create it as ``processing`` with created_at=now.

        Never changes an existing record, so two racing first sights agree on created_at.
        """
        ...

    def take_up(
        self, *, image_id: str, bucket: str, source_key: str, now: str, exists: bool = False
    ) -> ImageRecord | None:
        """A try of the image starts: on first sight, create it ``processing`` with
        created_at=now and one try; while it is still ``processing``, count one more try.

        Returns the stored record after it, or None when the record is past ``processing``
        (done, failed, deleted), which is left as it is. Two racing first sights agree on
        created_at, and both count. ``exists``: the caller has just read the record, so the
        count is tried first.
        """
        ...

    def put_back(self, image_id: str) -> None:
        """One try fewer on a ``processing`` record: the try ended in an error the queue
        retries, so it was no try. A record past ``processing``, or with no try counted, is
        left as it is."""
        ...

    def forget_unread(self, image_id: str) -> None:
        """Remove a record that is ``processing`` with no renditions (its source was gone
        before it was read): an original read in place gets no delete event to settle it."""
        ...

    def save(self, record: ImageRecord) -> ImageRecord | None:
        """Replace the whole record unless the stored one is newer; return what it replaced.

        Newer means: the stored sequencer is greater than ``record.sequencer``, or the stored
        record has a sequencer and ``record`` has none. Raises StaleEvent then. created_at is
        the caller's to keep (take it from ``begin`` or ``take_up``).
        """
        ...

    def find_by_sha256(self, sha256: str) -> list[ImageRecord]:
        """Records whose source bytes hash to ``sha256`` (eventually consistent index)."""
        ...

    def settle_event(self, image_id: str, version: int) -> None:
        """Clear the record's pending event, if the record is still at ``version`` (a newer
        state carries its own); the outbox's second write."""
        ...


class EventPublisher(Protocol):
    """Where completion events go (EventBridge)."""

    def publish(self, announcements: Sequence[Announcement]) -> None:
        """Publish every one, or raise TransientError (publishing again is harmless: an
        event's id is the same every time)."""
        ...


# --- the engine (processor/imaging/), as the service uses it -----------------------------


class Spooled(Protocol):
    """An upload copied to local disk while hashing; closing deletes the temp file."""

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Output(Protocol):
    @property
    def info(self) -> RenditionInfo: ...

    @property
    def data(self) -> bytes: ...


class EngineResult(Protocol):
    @property
    def facts(self) -> ImageFacts: ...

    @property
    def outputs(self) -> Sequence[Output]: ...

    @property
    def content_version(self) -> str | None: ...

    @property
    def config_version(self) -> str: ...

    @property
    def timings(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Reading:
    """Two clocks read at one moment, in seconds."""

    wall: float  # monotonic wall clock
    cpu: float  # CPU time of the whole process, every thread

    def __sub__(self, earlier: Reading) -> Reading:
        return Reading(self.wall - earlier.wall, self.cpu - earlier.cpu)


class Clocks(Protocol):
    def read(self) -> Reading:
        """Wall time and the process's CPU time, now."""
        ...


class RetryQueue(Protocol):
    def send_later(self, body: str, *, delay_s: int, attributes: Mapping[str, str]) -> None:
        """Put one message on the processing queue, delivered ``delay_s`` seconds from now
        (0-900), with these string message attributes."""
        ...


class ImageEngine(Protocol):
    def spool(self, source: IO[bytes]) -> Spooled:
        """Copy a stream to a temp file while hashing; ImageTooLarge past the byte limit."""
        ...

    def process(
        self,
        source: Any,  # a Spooled from spool() (the engine also takes paths and streams)
        *,
        image_id: str,
        versioned: bool = ...,
        source_name: str | None = ...,
        time_budget_s: float | None = ...,
    ) -> EngineResult:
        """Renditions and facts, or an ImageRejected subclass for a bad image (including one
        that computed past ``time_budget_s`` or the configured budget: TimeBudgetExceeded)."""
        ...


# --- sizes made on demand (processor/service/ondemand.py) ----------------------------------


class Rendered(Protocol):
    """One rendition the engine made alone."""

    @property
    def format(self) -> str: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def animated(self) -> bool: ...

    @property
    def data(self) -> bytes: ...


class Renderer(Protocol):
    def render(
        self, source: IO[bytes], spec: RenditionSpec, *, time_budget_s: float | None = None
    ) -> Rendered:
        """One rendition of ``source`` as ``spec`` says, under the engine's limits; an
        ImageRejected subclass when the source is refused."""
        ...


class SizeClaims(Protocol):
    """The image table's side of sizes made on demand: each size is claimed by one maker,
    then added to the record, both by conditional writes on the image's item."""

    def get(self, image_id: str) -> ImageRecord | None: ...

    def claim_size(
        self,
        image_id: str,
        *,
        key: str,
        content_version: str,
        now: int,
        stale_before: int,
        max_per_image: int,
    ) -> bool:
        """Claim the making of ``key`` (``now``: epoch seconds): True for the one claimant
        while the image is done at ``content_version``; False when the record lists it made
        already, or while another claim newer than ``stale_before`` holds it (someone else is
        making it): its file is the one to read. Raises NoSuchRendition when the
        image is not done at that version, OnDemandLimit when it has had ``max_per_image``
        sizes claimed already."""
        ...

    def add_size(self, image_id: str, *, content_version: str, info: RenditionInfo) -> bool:
        """Add the made size to the record and release its claim, if the image is still done
        at ``content_version`` and does not list it yet; False when the record moved on."""
        ...


# --- the API's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedPart:
    part_number: int
    size: int  # bytes
    etag: str


@dataclass(frozen=True)
class PresignedForm:
    url: str
    fields: dict[str, str]


class UploadStore(Protocol):
    """The API's side of the pipeline bucket: presigned uploads, listings, deletes."""

    def presigned_post(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        max_bytes: int,
        expires_in: int,
        uploader: str | None = None,
    ) -> PresignedForm:
        """A form S3 accepts only as signed; ``uploader`` goes into the object's metadata,
        and the policy holds it, so the client cannot change it."""
        ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...

    def delete(self, bucket: str, keys: Sequence[str]) -> None:
        """Delete these keys; keys that do not exist are fine."""
        ...

    def start_multipart(
        self, bucket: str, key: str, *, content_type: str, uploader: str | None = None
    ) -> str:
        """Start a multipart upload (``uploader`` in its metadata); returns its upload id."""
        ...

    def part_url(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int,
        content_length: int,
    ) -> str:
        """A presigned PUT for one part that S3 accepts only with this exact Content-Length."""
        ...

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]: ...

    def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> str:
        """Join (part number, ETag) pairs, ascending, into the object; returns its ETag."""
        ...

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None: ...


class Queue(Protocol):
    def send(self, body: str) -> str:
        """Put one message on the processing queue; returns its message id."""
        ...
