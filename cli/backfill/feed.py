"""Send a source's objects to the processing queue at a pace, with a checkpoint.

One step at a time: take up to a batch of objects, wait for the pace, send them in one
SendMessageBatch, then write the checkpoint (position after the batch, counts) atomically. So
a batch is either sent and checkpointed, or not checkpointed and sent again on resume; a
Ctrl-C (or SIGTERM) only sets a flag that the loop reads between steps, so it always stops
between a checkpoint and the next batch. Only a hard kill (SIGKILL, power loss) between a send
and its checkpoint sends that one batch twice, which the processor skips (same bytes, same
record: nothing is made twice).

The pace is a schedule, not a sleep per message: batch n goes out no earlier than
``start + sent_before_it / rate``, so over the run the rate never exceeds ``rate``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.backfill.sources import Entry, Position, Source
from processor.core.messages import backfill_message

SQS_BATCH = 10
CHECKPOINT_FORMAT = 1
_SEND_ATTEMPTS = 5


@dataclass
class Checkpoint:
    """What a backfill has done so far; a JSON file written whole each time (rename)."""

    source: str
    queue_url: str
    started_at: str  # ISO 8601 UTC: the summary counts records older than this as skipped
    position: Position | None = None  # after the last object sent or skipped
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # send failures, by error code
    finished: bool = False
    total: int | None = None  # objects the dry run counted

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a backfill checkpoint of this version")
        return cls(
            source=data["source"],
            queue_url=data["queue_url"],
            started_at=data["started_at"],
            position=data.get("position"),
            sent=int(data.get("sent", 0)),
            skipped=Counter(data.get("skipped", {})),
            errors=Counter(data.get("errors", {})),
            finished=bool(data.get("finished", False)),
            total=data.get("total"),
        )

    def save(self, path: Path) -> None:
        data = {
            "format": CHECKPOINT_FORMAT,
            "source": self.source,
            "queue_url": self.queue_url,
            "started_at": self.started_at,
            "position": self.position,
            "sent": self.sent,
            "skipped": dict(self.skipped),
            "errors": dict(self.errors),
            "finished": self.finished,
            "total": self.total,
        }
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        temporary.replace(path)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Pacer:
    """At most ``rate`` messages a second over the run, whatever the batch sizes."""

    def __init__(
        self, rate: float, stop: threading.Event, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = rate
        self._stop = stop
        self._clock = clock
        self._start: float | None = None
        self._sent = 0

    @property
    def batch(self) -> int:
        """Messages per SendMessageBatch: 10, or fewer at low rates (no bursts of 10)."""
        return max(1, min(SQS_BATCH, int(self.rate)))

    def wait(self) -> bool:
        """Block until the next batch may go; False when stopping instead."""
        if self._start is None:
            self._start = self._clock()
        due = self._start + self._sent / self.rate
        delay = due - self._clock()
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()

    def sent(self, n: int) -> None:
        self._sent += n


class SendFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def send_batch(sqs: Any, queue_url: str, bodies: list[str], errors: Counter[str]) -> None:
    """Send every body, retrying refused entries; SendFailed when some stay refused."""
    pending = dict(enumerate(bodies))
    for attempt in range(_SEND_ATTEMPTS):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in pending.items()]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as e:  # botocore already retried throttling and 5xx
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            errors[str(code)] += 1
            if attempt == _SEND_ATTEMPTS - 1:
                raise SendFailed(str(code), str(e)) from e
            time.sleep(0.2 * 2**attempt)
            continue
        for ok in response.get("Successful", []):
            pending.pop(int(ok["Id"]), None)
        failed = response.get("Failed", [])
        for fail in failed:
            errors[str(fail.get("Code", "Failed"))] += 1
        if not pending:
            return
        if attempt == _SEND_ATTEMPTS - 1:
            first = failed[0] if failed else {}
            raise SendFailed(str(first.get("Code", "Failed")), str(first.get("Message", "")))
        time.sleep(0.2 * 2**attempt)


@dataclass
class Feeder:
    """The loop: ``run`` returns when the source is exhausted, the cap is reached, or
    ``stop`` is set (signals); the checkpoint says which."""

    sqs: Any
    source: Source
    checkpoint: Checkpoint
    path: Path
    pacer: Pacer
    skip: Callable[[Entry], str | None]
    stop: threading.Event
    limit: int | None = None  # objects to send at most, over every run (--max-cost)
    on_step: Callable[[Checkpoint], None] = lambda _: None

    def run(self) -> str:
        """ "done", "stopped" or "capped"."""
        batch: list[Entry] = []
        consumed: Position | None = self.checkpoint.position
        for entry, position in self.source.entries(after=self.checkpoint.position):
            # Everything consumed is in the batch or skipped: once the batch is sent, the
            # position may move past all of it.
            consumed = position
            reason = self.skip(entry)
            if reason is not None:
                self.checkpoint.skipped[reason] += 1
                if not batch:
                    self.checkpoint.position = position
                continue
            batch.append(entry)
            if len(batch) >= min(self.pacer.batch, self._room()):
                outcome = self._flush(batch, consumed)
                batch = []
                if outcome:
                    return outcome
        if batch:
            outcome = self._flush(batch, consumed)
            if outcome:
                return outcome
        self.checkpoint.position = consumed
        self.checkpoint.finished = True
        self.checkpoint.save(self.path)
        return "done"

    def _room(self) -> int:
        if self.limit is None:
            return SQS_BATCH
        return max(1, self.limit - self.checkpoint.sent)

    def _flush(self, batch: list[Entry], consumed: Position | None) -> str | None:
        if self.limit is not None and self.checkpoint.sent >= self.limit:
            self.checkpoint.save(self.path)
            return "capped"
        if not self.pacer.wait():
            self.checkpoint.save(self.path)
            return "stopped"
        bodies = [backfill_message(e.bucket, e.key, etag=e.etag, size=e.size) for e in batch]
        send_batch(self.sqs, self.checkpoint.queue_url, bodies, self.checkpoint.errors)
        self.pacer.sent(len(batch))
        self.checkpoint.sent += len(batch)
        self.checkpoint.position = consumed
        self.checkpoint.save(self.path)
        self.on_step(self.checkpoint)
        if self.stop.is_set():
            return "stopped"
        if self.limit is not None and self.checkpoint.sent >= self.limit:
            return "capped"
        return None


def walk(source: Source, after: Position | None = None) -> Iterator[Entry]:
    for entry, _ in source.entries(after=after):
        yield entry
