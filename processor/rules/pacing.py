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
first the next time; a message that comes back (put off, stopped with its invocation, a
retried error, a try starved of CPU) runs alone, before the others start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from processor.core.messages import TRIES_ATTRIBUTE

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


def receive_count(record: Mapping[str, Any]) -> int:
    """An SQS record's ApproximateReceiveCount (1 when it does not say)."""
    try:
        return int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def runs_alone(record: Mapping[str, Any]) -> bool:
    """A message that comes back runs with no other image beside it: one received before
    (its invocation was stopped, or it was put off, or an error is being retried) and the
    retry of a try starved of CPU (processor/rules/tries.py)."""
    attributes = record.get("messageAttributes") or {}
    return receive_count(record) > 1 or TRIES_ATTRIBUTE in attributes


def most_received_first(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """SQS records that run alone first, then by ApproximateReceiveCount, highest first
    (stable otherwise)."""
    return sorted(records, key=lambda r: (runs_alone(r), receive_count(r)), reverse=True)
