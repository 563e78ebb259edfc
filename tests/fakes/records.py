"""The one in-memory image table reader, shared by the API's and the processor's tests."""

from __future__ import annotations

from processor.core.ports import Page
from processor.core.record import ImageRecord, ScoreRange, Status


class FakeReader:
    """ImageReader over a dict, paging like DynamoDB: the position is the last item's key."""

    def __init__(self, records: list[ImageRecord] | None = None) -> None:
        self.records = {r.id: r for r in records or []}
        self.calls: list[dict[str, object]] = []

    def add(self, *records: ImageRecord) -> None:
        for r in records:
            self.records[r.id] = r

    def get(self, image_id: str) -> ImageRecord | None:
        return self.records.get(image_id)

    def list_images(
        self,
        *,
        status: Status | None = None,
        limit: int = 50,
        position: dict[str, str] | None = None,
        uploader: str | None = None,
        scores: ScoreRange | None = None,
    ) -> Page:
        self.calls.append({"status": status, "limit": limit, "position": position})
        rows = sorted(
            (
                r
                for r in self.records.values()
                if (r.status is status if status else r.status is not Status.deleted)
                and (uploader is None or r.uploader == uploader)
                and (scores is None or scores.admits(r.renditions))
            ),
            key=lambda r: f"{r.created_at}#{r.id}",
            reverse=True,
        )
        if position is not None:
            after = position["sort_key"]
            rows = [r for r in rows if f"{r.created_at}#{r.id}" < after]
        page, rest = rows[:limit], rows[limit:]
        last = page[-1] if page and rest else None
        next_position = (
            {"id": last.id, "sort_key": f"{last.created_at}#{last.id}", "list_pk": "image"}
            if last
            else None
        )
        return Page(items=page, next_position=next_position)
