"""An SQS batch's records run side by side, with the same result as one after another.

On a multi-vCPU function an image's critical path is its decode plus its largest encode, so
while one image's last encode holds a core, the next image decodes on the other. Two rules
keep the outcome what a sequential run gives:

- **turns**: records run at once but decide whether to start in batch order (most received
  first), so the pacing is the same: record n decides once every record before it has decided
  (or finished without needing to);
- **one event of an image at a time**: a duplicate delivery in the same batch finds the first
  one applied. A record waits for its turn before it waits for its image's lock, whose holder
  has decided already: no cycle.

A record that must run alone (one that came back: processor/rules/pacing.py) runs before the
others start, one at a time, so nothing shares the CPU with it.

The partial batch response (``batchItemFailures``) is built here from each record's own
failure, in batch order, so it does not depend on which record finished first.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

Record = Mapping[str, Any]


class _Turns:
    def __init__(self) -> None:
        self._decided = threading.Condition()
        self._next = 0  # every record before this position has decided

    def wait(self, position: int) -> None:
        with self._decided:
            self._decided.wait_for(lambda: self._next >= position)

    def done(self, position: int) -> None:
        with self._decided:
            self._next = max(self._next, position + 1)
            self._decided.notify_all()


class _ImageLocks:
    """One lock per image in flight."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, iid: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(iid, (threading.Lock(), 0))
            self._locks[iid] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[iid]
                if users == 1:
                    del self._locks[iid]
                else:
                    self._locks[iid] = (lock, users - 1)


@dataclass(frozen=True)
class Turn:
    """One record's place in its batch, handed to the record handler."""

    position: int
    _turns: _Turns
    _locks: _ImageLocks

    @contextlib.contextmanager
    def image(self, iid: str) -> Iterator[Callable[[], None]]:
        """Wait for this record's turn, then hold ``iid``; call what it yields once the record
        has decided whether to start (the next record may then decide)."""
        self._turns.wait(self.position)
        with self._locks.hold(iid):
            try:
                yield self.decided
            finally:
                self.decided()

    def decided(self) -> None:
        self._turns.done(self.position)

    @classmethod
    def alone(cls) -> Turn:
        """The turn of a record handled by itself (a direct S3 trigger): never waits."""
        return cls(0, _Turns(), _ImageLocks())


def run_batch(
    records: Sequence[Record],
    handle: Callable[[Record, Turn], None],
    *,
    workers: int,
    alone: Callable[[Record], bool] = lambda _: False,
) -> dict[str, list[dict[str, str]]]:
    """Handle every record, ``workers`` at a time; a record whose handler raised is reported
    in ``batchItemFailures`` (SQS delivers it again), every other one is done.

    Records for which ``alone`` says so run first, one at a time, before any other starts:
    nothing shares the function's CPU with them."""
    turns, locks = _Turns(), _ImageLocks()
    # Turns follow this order: the records that run alone, then the others, each in batch order.
    order = sorted(range(len(records)), key=lambda n: not alone(records[n]))
    first_together = sum(1 for n in order if alone(records[n]))

    def one(position: int) -> bool:
        turn = Turn(position, turns, locks)
        try:
            handle(records[order[position]], turn)
        except Exception:  # the handler logged it; the message is retried
            return False
        finally:
            turn.decided()  # a record that never reached an image (malformed) passes its turn
        return True

    succeeded = [one(p) for p in range(first_together)]
    together = range(first_together, len(order))
    if workers <= 1 or len(together) <= 1:
        succeeded += [one(p) for p in together]
    else:
        with ThreadPoolExecutor(
            max_workers=min(workers, len(together)), thread_name_prefix="imgpipe-image"
        ) as pool:
            succeeded += list(pool.map(one, together))
    ok = dict(zip(order, succeeded, strict=True))
    return {
        "batchItemFailures": [
            {"itemIdentifier": str(record.get("messageId", ""))}
            for n, record in enumerate(records)
            if not ok[n]
        ]
    }
