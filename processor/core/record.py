"""The stored image record: one definition, written by the processor, read by the API.

Imports neither pyvips nor FastAPI, so both sides (and the tests) can share it cheaply.
DynamoDB holds it as a map; ``to_item``/``from_item`` are the only translation.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    processing = "processing"
    done = "done"
    failed = "failed"
    deleted = "deleted"


class Change(StrEnum):
    """A change of an image that the pipeline announces (processor/core/changes.py gives each
    its event type): one per final state, and room for changes that keep the state (a
    rendition made on demand)."""

    processed = "processed"
    failed = "failed"
    deleted = "deleted"


class RenditionInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # the rendition's name in the config, e.g. "thumb"
    key: str  # relative to the output root / public prefix, e.g. "thumbs/<id>-<ver>.webp"
    format: str  # "jpeg" | "png" | "webp" | "avif"
    content_type: str
    width: int
    height: int
    bytes: int
    # The file is an animation (an animated upload's WebP); False: a still, the poster frame
    # for an animated upload.
    animated: bool = False
    # Made on its first request (processor/core/sizes.py), not at upload.
    on_demand: bool = False
    # SSIMULACRA2 of the file's own decoded pixels against the pixels it was encoded from
    # (100: identical; about 90 cannot be told apart, 70 high quality, 50 medium). None: not
    # scored (an animation, scoring turned off, or too little time or memory in the budget).
    score: float | None = None
    # The quality setting an ``auto`` rendition's search chose for this file; None: the
    # configured or calibrated setting (core/config.py).
    quality: int | None = None

    def to_item(self) -> dict[str, Any]:
        """As the record's ``renditions`` list holds it in DynamoDB."""
        item: dict[str, Any] = _to_dynamo(self.model_dump(mode="json", exclude_none=True))
        return item


def worst_score(renditions: list[RenditionInfo]) -> float | None:
    """The lowest score among an image's renditions; None when none was scored."""
    scores = [r.score for r in renditions if r.score is not None]
    return min(scores) if scores else None


class ScoreRange(BaseModel):
    """A listing filter on an image's worst-scored rendition: ``max_score`` finds images with
    a rendition at or below it, ``min_score`` those whose every scored rendition reaches it.
    An image with no score passes neither."""

    model_config = ConfigDict(frozen=True)

    min_score: float | None = None
    max_score: float | None = None

    def admits(self, renditions: list[RenditionInfo]) -> bool:
        worst = worst_score(renditions)
        if worst is None:
            return False
        if self.min_score is not None and worst < self.min_score:
            return False
        return self.max_score is None or worst <= self.max_score


class StillReason(BaseModel):
    """Why an animated upload's renditions are all stills: a limit or the config, never a
    failure. Codes (processor/rules/motion.py): turned_off, too_many_pixels, too_long,
    too_costly."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class ImageFacts(BaseModel):
    """What the engine learns about one input (all from the header, plus the hash)."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    input_bytes: int
    format: str  # detected from the bytes: jpeg, png, webp, gif, tiff, heif
    width: int  # after EXIF orientation
    height: int
    orientation: int = 1  # EXIF 1..8
    has_alpha: bool = False
    frames: int = 1  # frames (or pages) in the file
    animated: bool = False  # the frames play as an animation (GIF, WebP, APNG, AVIF sequence)
    duration_ms: int | None = None  # one loop, each delay as browsers play it; None: a still
    loop: int | None = None  # plays of the animation, 0 = forever; None: a still
    # Set when an animated upload got only still renditions, saying why.
    still_reason: StillReason | None = None
    colour_space: str = "srgb"  # libvips interpretation of the input
    bits_per_sample: int = 8
    icc_description: str | None = None
    captured_at: str | None = None  # EXIF DateTimeOriginal, ISO 8601 without zone
    dominant_color: str | None = None  # "#rrggbb"
    placeholder: str | None = None  # BlurHash


class ImageRecord(BaseModel):
    """One image, as DynamoDB stores it and the API serves it."""

    id: str
    source_key: str  # the raw object's key, e.g. "raw/2024/cat.jpg"; "" on a tombstone
    bucket: str = ""
    status: Status
    # Who uploaded it: the subject of the JWT that asked for the upload URL; None for uploads
    # with the API key or straight to S3. Deleting and reprocessing are the uploader's (or an
    # admin's) to do.
    uploader: str | None = None
    created_at: str  # ISO 8601 UTC
    updated_at: str
    # S3 event sequencer of the last applied event (hex); orders events for one key.
    sequencer: str | None = None
    # S3's ETag of the bytes the state was made from (no quotes): a backfill of the same,
    # unchanged object is skipped on it without reading the bytes again.
    source_etag: str | None = None
    # Hash of the rendition config that made the renditions (see EngineConfig.version).
    config_version: str | None = None
    # Content version in rendition keys: changes when the bytes or the config change.
    content_version: str | None = None
    facts: ImageFacts | None = None
    renditions: list[RenditionInfo] = Field(default_factory=list)
    processing_ms: float | None = None
    # Where processing_ms went, in ms: s3_read, decode, encode, s3_write (engine and S3 only;
    # the DynamoDB commit comes after the record is written, so only the log line has it).
    timings: dict[str, float] | None = None
    error: ErrorInfo | None = None
    # Counts the states this record has had: each transition adds one, and a save is refused
    # unless it is greater than the stored one, so two states never share a number. Events
    # carry it for ordering; 0 on records written before it existed.
    version: int = 0
    # The outbox: the change this state still has to announce, written by the same
    # conditional write as the state itself and cleared once the event is published.
    pending_event: Change | None = None
    # Tries processing took: invocations that took the image up and tried it (1 for nearly
    # every image; a try starved of CPU, or stopped with its invocation, adds one). While
    # ``processing``: the tries so far, the running one included. None on records written
    # before tries were counted, and in listings (not projected: counting costs no index write).
    tries: int | None = None

    # --- state transitions: the one place a record is assembled ----------------------------

    @classmethod
    def first_sight(
        cls,
        *,
        image_id: str,
        bucket: str,
        source_key: str,
        now: str,
        uploader: str | None = None,
    ) -> ImageRecord:
        """A new image, ``processing`` until its first event is applied."""
        return cls(
            id=image_id,
            source_key=source_key,
            bucket=bucket,
            status=Status.processing,
            uploader=uploader,
            created_at=now,
            updated_at=now,
        )

    def done(
        self,
        *,
        now: str,
        sequencer: str | None,
        config_version: str,
        content_version: str,
        facts: ImageFacts | None,
        renditions: list[RenditionInfo],
        processing_ms: float,
        timings: dict[str, float],
        tries: int = 1,
    ) -> ImageRecord:
        made = {"content_version": content_version, "facts": facts, "renditions": renditions}
        spent = {"processing_ms": processing_ms, "timings": timings, "tries": tries}
        return self._next(
            Status.done, now, sequencer, config_version, made | spent, Change.processed
        )

    def failed(
        self,
        *,
        now: str,
        sequencer: str | None,
        config_version: str,
        error: ErrorInfo,
        processing_ms: float,
        tries: int = 1,
    ) -> ImageRecord:
        """The image itself is bad: no renditions, the reason kept."""
        why = {"error": error, "processing_ms": processing_ms, "tries": tries}
        return self._next(Status.failed, now, sequencer, config_version, why, Change.failed)

    def deleted(self, *, now: str, sequencer: str | None) -> ImageRecord:
        """A tombstone: what stays of a deleted image is its id, status, times and order.

        No facts, placeholder, file name, renditions or error: a deleted upload tells nobody
        what it was. The sequencer stays so that an older event cannot bring the image back.
        """
        return ImageRecord(
            id=self.id,
            source_key="",
            status=Status.deleted,
            created_at=self.created_at,
            updated_at=now,
            sequencer=sequencer or self.sequencer,
            version=self.version + 1,
            pending_event=Change.deleted,
        )

    def _next(
        self,
        status: Status,
        now: str,
        sequencer: str | None,
        config_version: str | None,
        fields: dict[str, Any],
        change: Change,
    ) -> ImageRecord:
        """The next state of the same image: identity, uploader and created_at kept, the rest
        replaced (by ``fields``, already typed by the transition's signature).

        The sequencer is the newest order known: the event's, else the one stored; the version
        is the next one, and ``change`` what the new state announces.
        """
        return ImageRecord(
            id=self.id,
            source_key=self.source_key,
            bucket=self.bucket,
            status=status,
            uploader=self.uploader,
            created_at=self.created_at,
            updated_at=now,
            sequencer=sequencer or self.sequencer,
            config_version=config_version,
            version=self.version + 1,
            pending_event=change,
            **fields,
        )

    def to_item(self) -> dict[str, Any]:
        """A DynamoDB item (resource-level types: floats become Decimal)."""
        item: dict[str, Any] = _to_dynamo(self.model_dump(mode="json", exclude_none=True))
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ImageRecord:
        return cls.model_validate(_from_dynamo(item))


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value
