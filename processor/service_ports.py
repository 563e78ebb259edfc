"""Ports of the event-driven processor: what ``service.py`` needs from the world, by role.

The adapters (processor/aws/) implement them with boto3; the tests with in-memory fakes.
Every method raises only project errors (processor/core/errors.py), never an SDK type:

- ``SourceMissing``: the object is gone (skip, do not retry);
- ``StaleEvent``: a newer state already exists (drop this event);
- ``TransientError``: throttling, 5xx, timeouts, lost connections (let the queue retry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Protocol

from processor.core.ports import ImageReader
from processor.core.record import ImageFacts, ImageRecord, RenditionInfo

# Rendition keys carry a content version, so a URL never changes meaning: cache it forever.
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class SourceObject:
    """An open S3 object: read ``stream`` once, front to back."""

    stream: IO[bytes]
    size: int  # bytes (Content-Length)
    etag: str | None = None  # without quotes


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


class ImageRepository(ImageReader, Protocol):
    """The image table: read side from processor/core/ports.py plus the processor's writes."""

    def begin(self, *, image_id: str, bucket: str, source_key: str, now: str) -> ImageRecord:
        """The stored record; on first sight, create it as ``processing`` with created_at=now.

        Never changes an existing record, so two racing first sights agree on created_at.
        """
        ...

    def save(self, record: ImageRecord) -> ImageRecord | None:
        """Replace the whole record unless the stored one is newer; return what it replaced.

        Newer means: the stored sequencer is greater than ``record.sequencer``, or the stored
        record has a sequencer and ``record`` has none. Raises StaleEvent then. created_at is
        the caller's to keep (take it from ``begin``).
        """
        ...

    def find_by_sha256(self, sha256: str) -> list[ImageRecord]:
        """Records whose source bytes hash to ``sha256`` (eventually consistent index)."""
        ...


# --- the engine (processor/engine.py), as the service uses it --------------------------------


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
    ) -> EngineResult:
        """Renditions and facts, or an ImageRejected subclass for a bad image."""
        ...
