"""Messages the project itself puts on the processing queue (besides S3's own events)."""

from __future__ import annotations

import json

REPROCESS = "imgpipe.reprocess"


def reprocess_message(bucket: str, key: str) -> str:
    """Ask the processor to derive an existing source again (config change, fix, replay)."""
    return json.dumps({"type": REPROCESS, "bucket": bucket, "key": key})
