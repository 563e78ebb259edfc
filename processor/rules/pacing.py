"""Which images of a batch to start, so that a batch never fails together. Pure.

An invocation that runs out of time is stopped by Lambda, and every message of its batch
comes back, good ones included, until the dead-letter queue. So the handler starts an image
only while the invocation still has the image's whole time budget (plus a reserve for S3
and DynamoDB) left; a message it does not start is reported in ``batchItemFailures`` and
comes back later, in an invocation with a full clock.

The first image of an invocation always starts, with what is left if that is less than the
budget: an image is never put off by an invocation that has nothing else to do (it would
come back to the same clock, again and again, until the dead-letter queue). The handler
also starts the batch with the messages received most often, so a message put off once is
first the next time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Never hand an image less than this, even the first of an invocation short of time.
MIN_BUDGET_S = 1.0


def image_budget(
    *, remaining_s: float, started: int, budget_s: float, reserve_s: float
) -> float | None:
    """Seconds the next image may compute, or None: do not start it in this invocation.

    ``remaining_s``: what is left of the invocation; ``started``: images already started in
    it; ``budget_s``: the configured per-image budget; ``reserve_s``: kept back for the
    image's S3 reads and writes and its commit.
    """
    available = remaining_s - reserve_s
    if available >= budget_s:
        return budget_s
    if started:
        return None
    return max(MIN_BUDGET_S, available)


def most_received_first(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """SQS records ordered by ApproximateReceiveCount, highest first (stable otherwise)."""

    def count(record: Mapping[str, Any]) -> int:
        try:
            return int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
        except (TypeError, ValueError):
            return 1

    return sorted(records, key=count, reverse=True)
