"""Where the processor may read originals besides its own raw/ prefix: the backfill sources.

Existing images are read in place (never copied, moved or deleted: docs/backfill.md says why),
so the processor must read keys that no upload made. It does so only for its own messages
(backfill, reprocess, forget; never for an S3 event) and only under a prefix named here at
deploy time (IMGPIPE_BACKFILL_SOURCES, the template's BackfillSources, which also scopes the
function's s3:GetObject to them): a message naming any other key is refused, so whoever may
send to the queue cannot make the pipeline publish renditions of an arbitrary object. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """``bucket/prefix``: every key of ``bucket`` that starts with ``prefix`` ("" = all)."""

    bucket: str
    prefix: str = ""

    def holds(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix) and not key.endswith("/")

    def __str__(self) -> str:
        return f"{self.bucket}/{self.prefix}"


def parse_sources(text: str) -> tuple[Source, ...]:
    """``"photos/archive/,legacy-bucket"`` -> the sources (commas or whitespace between).

    Each entry is ``bucket/prefix``, ``s3://bucket/prefix``, or the object ARN pattern the
    template's BackfillSources takes (``arn:aws:s3:::bucket/prefix*``, which the function's
    IAM policy grants as it is)."""
    out: list[Source] = []
    for entry in text.replace(",", " ").split():
        if entry.startswith("arn:"):
            _, _, path = entry.partition(":::")
            if not path.endswith("*") or "*" in path[:-1]:
                raise ValueError(f"an ARN source ends with its only '*', got {entry!r}")
            entry = path[:-1]
        bucket, _, prefix = entry.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"a backfill source is bucket/prefix, got {entry!r}")
        out.append(Source(bucket, prefix))
    return tuple(out)


def check_sources(sources: Iterable[Source], *, bucket: str, public_prefix: str) -> None:
    """ValueError for a source that would let the pipeline read its own output: renditions
    made from renditions, without end."""
    for source in sources:
        if source.bucket != bucket:
            continue
        if public_prefix.startswith(source.prefix) or source.prefix.startswith(public_prefix):
            raise ValueError(
                f"backfill source {source} overlaps the bucket's output prefix {public_prefix}"
            )


def source_of(sources: Iterable[Source], bucket: str, key: str) -> Source | None:
    """The source that holds this key, if any."""
    return next((s for s in sources if s.holds(bucket, key)), None)
