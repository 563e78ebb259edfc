"""After a backfill: what became of each object sent, read back from the image records.

The source is walked again up to the checkpoint's position (so the summary holds for an
interrupted run too) and each object's record read by its id (BatchGetItem, 100 at a time):

- done: derived this run; or copied from a duplicate (another object of the source with the
  same bytes was derived, its renditions copied); or already done before the run began (a
  second backfill of the same objects: the processor read the bytes and made nothing);
- failed, by the record's error code (unsupported_format, corrupt_image, ...);
- no record: the object was gone when the processor read it (deleted mid-run), or it is
  still queued. A listing walked again no longer shows a deleted object, so this count is
  what was sent less what has a record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cli.backfill.sources import Entry, Position, Source
from processor.core.keys import image_id
from processor.core.record import ImageRecord, Status

_BATCH = 100


@dataclass
class Summary:
    objects: int = 0
    derived: int = 0
    copied: int = 0  # same bytes as another object of this backfill: renditions copied
    already_done: int = 0  # done before this backfill started: nothing made
    failed: Counter[str] = field(default_factory=Counter)  # by error code
    deleted: int = 0
    processing: int = 0
    missing: int = 0  # no record

    @property
    def done(self) -> int:
        return self.derived + self.copied + self.already_done

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "done": self.done,
            "derived": self.derived,
            "copied": self.copied,
            "already_done": self.already_done,
            "failed": dict(self.failed),
            "deleted": self.deleted,
            "processing": self.processing,
            "missing": self.missing,
        }

    def lines(self) -> list[str]:
        failed = ", ".join(f"{code} {n:,}" for code, n in self.failed.most_common())
        return [
            f"done       {self.done:,} ({self.derived:,} derived, {self.copied:,} copied from "
            f"a duplicate, {self.already_done:,} already done: skipped)",
            f"failed     {sum(self.failed.values()):,}" + (f" ({failed})" if failed else ""),
            f"no record  {self.missing:,} (gone before the processor read it, or still queued)",
        ] + ([f"processing {self.processing:,}"] if self.processing else [])


def _sent(
    source: Source, upto: Position | None, skip: Callable[[Entry], str | None]
) -> Iterator[Entry]:
    if upto is None:
        return
    for entry, position in source.entries():
        if skip(entry) is None:
            yield entry
        if position == upto:
            return


def summarize(
    repo: Any,
    source: Source,
    *,
    upto: Position | None,
    started_at: str,
    skip: Callable[[Entry], str | None],
    sent: int,
) -> Summary:
    """``repo``: a DynamoImageRepository (``get_many``); ``sent``: the checkpoint's count."""
    summary = Summary()
    seen_hashes: set[str] = set()
    batch: list[str] = []

    def tally(ids: list[str]) -> None:
        found = repo.get_many(ids)
        for iid in ids:
            _count(summary, found.get(iid), started_at, seen_hashes)

    for entry in _sent(source, upto, skip):
        summary.objects += 1
        batch.append(image_id(entry.bucket, entry.key))
        if len(batch) == _BATCH:
            tally(batch)
            batch = []
    if batch:
        tally(batch)
    recorded = summary.done + sum(summary.failed.values()) + summary.deleted + summary.processing
    summary.objects = max(sent, recorded)
    summary.missing = summary.objects - recorded
    return summary


def _count(summary: Summary, record: ImageRecord | None, started_at: str, seen: set[str]) -> None:
    if record is None:
        summary.missing += 1
    elif record.status is Status.failed:
        summary.failed[record.error.code if record.error else "unknown"] += 1
    elif record.status is Status.deleted:
        summary.deleted += 1
    elif record.status is Status.processing:
        summary.processing += 1
    elif record.updated_at < started_at:
        summary.already_done += 1
        seen.add(record.facts.sha256 if record.facts else record.id)
    else:
        sha = record.facts.sha256 if record.facts else record.id
        if sha in seen:
            summary.copied += 1
        else:
            summary.derived += 1
        seen.add(sha)
