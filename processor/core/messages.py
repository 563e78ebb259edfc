"""Messages the project itself puts on the processing queue (besides S3's own events)."""

from __future__ import annotations

import json

REPROCESS = "imgpipe.reprocess"
# One object event tried again later (processor/core/events.py writes and reads it): the
# event as it arrived, and how many tries it has had.
RETRY = "imgpipe.retry"
# The message attribute a retry carries (its tries so far), read before any body is parsed:
# the handler runs such a message alone (processor/rules/pacing.py), the local worker logs it.
TRIES_ATTRIBUTE = "imgpipe-tries"


def reprocess_message(bucket: str, key: str) -> str:
    """Ask the processor to derive an existing source again (config change, fix, replay)."""
    return json.dumps({"type": REPROCESS, "bucket": bucket, "key": key})


BACKFILL = "imgpipe.backfill"
FORGET = "imgpipe.forget"


def backfill_message(bucket: str, key: str, *, etag: str | None, size: int | None = None) -> str:
    """Derive an existing object (a backfill): like an upload, so the same bytes and config
    make nothing twice. ``etag`` pins the bytes that were listed (a replaced object is
    skipped as superseded); the key is plain text, not URL-encoded."""
    body: dict[str, object] = {"type": BACKFILL, "bucket": bucket, "key": key}
    if etag:
        body["etag"] = etag.strip('"')
    if size is not None:
        body["size"] = size
    return json.dumps(body)


def forget_message(bucket: str, key: str) -> str:
    """Delete the image of an original read in place: its renditions and record go, the
    original stays (it is not the pipeline's to delete)."""
    return json.dumps({"type": FORGET, "bucket": bucket, "key": key})
