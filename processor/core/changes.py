"""Completion events: what the pipeline tells integrators when an image changes. Pure.

One EventBridge event per announced change of a record (record.py ``Change``): ``source`` is
``imgpipe``, ``detail-type`` comes from ``DETAIL_TYPES`` (one entry per change: a change
without one is an error, never another change's type), ``detail`` is the image as the API
shows it to a writer (view.py) plus the record's ``version`` (for ordering: a consumer keeps
the highest it has seen) and an ``event_id`` that is the same every time the same change is
published (for deduplication: EventBridge delivers at least once, and a retry after a crash
may publish the same change again).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from processor.core.record import Change, ImageRecord
from processor.core.view import ImagePublic, image_public

SOURCE = "imgpipe"

DETAIL_TYPES: dict[Change, str] = {
    Change.processed: "Image Processed",
    Change.failed: "Image Failed",
    Change.deleted: "Image Deleted",
}


class ImageChanged(ImagePublic):
    """An event's ``detail``: the image as ``GET /images/{id}`` shows it to a writer, plus
    the change's order and identity."""

    version: int = Field(
        description="the record's version: it grows with every change of the image, so the "
        "highest seen is the newest state"
    )
    event_id: str = Field(
        description="the same for every delivery of this change: deduplicate on it"
    )


@dataclass(frozen=True)
class Announcement:
    """One event, ready for a publisher: what PutEvents takes, less the bus."""

    detail_type: str
    detail: str  # JSON
    time: str  # the record's updated_at (ISO 8601 UTC)
    event_id: str
    image_id: str
    version: int


def event_id(record: ImageRecord) -> str:
    return f"{record.id}-{record.version}"


def announcement(record: ImageRecord, cdn_base_url: str) -> Announcement:
    """The event for the change ``record`` has pending (ValueError when it has none)."""
    change = record.pending_event
    if change is None:
        raise ValueError(f"record {record.id} has no change to announce")
    view = image_public(record, cdn_base_url, private=True)
    detail = ImageChanged(**view.model_dump(), version=record.version, event_id=event_id(record))
    return Announcement(
        detail_type=DETAIL_TYPES[change],
        detail=detail.model_dump_json(),
        time=record.updated_at,
        event_id=detail.event_id,
        image_id=record.id,
        version=record.version,
    )
