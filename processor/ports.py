"""Ports: what the services need from the world, by role. Adapters implement them.

Read side, shared with the API. The processor's adapters module adds the write side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from processor.record import ImageRecord, Status


@dataclass(frozen=True)
class Page:
    items: list[ImageRecord]
    # Where the next page starts: the store's own position (DynamoDB's LastEvaluatedKey,
    # all string values). None on the last page. The API signs it into an opaque cursor.
    next_position: dict[str, str] | None = field(default=None)


class ImageReader(Protocol):
    def get(self, image_id: str) -> ImageRecord | None: ...

    def list_images(
        self,
        *,
        status: Status | None = None,
        limit: int = 50,
        position: dict[str, str] | None = None,
    ) -> Page:
        """Newest first (by created_at, then id). Without a status, deleted images are left out."""
        ...
