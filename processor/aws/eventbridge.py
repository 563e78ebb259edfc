"""EventBridgePublisher: the EventPublisher port (processor/core/ports.py) on one event bus."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processor.aws.errors import translated
from processor.core.changes import SOURCE, Announcement
from processor.core.errors import TransientError

_BATCH = 10  # PutEvents takes at most 10 entries


class EventBridgePublisher:
    def __init__(self, client: Any, bus: str) -> None:
        self._client = client
        self.bus = bus  # a name, or an ARN for a bus in another account

    def publish(self, announcements: Sequence[Announcement]) -> None:
        for start in range(0, len(announcements), _BATCH):
            chunk = announcements[start : start + _BATCH]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": a.detail_type,
                    "Detail": a.detail,
                    "Time": a.time,
                    "EventBusName": self.bus,
                }
                for a in chunk
            ]
            with translated(f"PutEvents {self.bus}"):
                response = self._client.put_events(Entries=entries)
            # PutEvents answers 200 even when some entries failed; each one says why.
            failed = [e for e in response.get("Entries", []) if e.get("ErrorCode")]
            if failed or response.get("FailedEntryCount"):
                first = failed[0] if failed else {}
                raise TransientError(
                    f"PutEvents {self.bus}: {len(failed)} of {len(chunk)} refused, "
                    f"e.g. {first.get('ErrorCode')}: {first.get('ErrorMessage')}"
                )
