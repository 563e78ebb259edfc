"""First sights: every upload of a batch gets its record before any image of it starts.

Should the invocation die while images wait for their turn, none is left without a record
(the handler calls this once per batch, before the first image).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from aws_lambda_powertools import Logger

from processor.core.errors import MalformedMessage, PipelineError
from processor.core.events import ObjectEvent, parse_body
from processor.entrypoints.batch import Record


class FirstSight(Protocol):
    def first_sight(self, event: ObjectEvent) -> object: ...


def first_sights(service: FirstSight, events: list[ObjectEvent], logger: Logger) -> None:
    """Give every upload that may wait for its turn its record before any image starts:
    should the invocation die, none is left without one. The writes go out together (one
    round trip, not one per message); a failure only leaves it to the image's own turn."""

    def one(event: ObjectEvent) -> None:
        try:
            service.first_sight(event)
        except PipelineError as e:
            logger.warning(
                "first sight not recorded early; the image's turn records it",
                extra={"key": event.key, "error_code": e.code, "error": e.message},
            )
        except Exception:  # a bug: logged whole, and still no reason to fail the batch
            logger.exception("first sight failed", extra={"key": event.key})

    if len(events) <= 1:
        for event in events:
            one(event)
        return
    with ThreadPoolExecutor(max_workers=len(events), thread_name_prefix="imgpipe-seen") as pool:
        list(pool.map(one, events))


def batch_events(records: Sequence[Record]) -> list[ObjectEvent]:
    """The object events of a batch's readable messages (the others are reported in turn)."""
    events: list[ObjectEvent] = []
    for record in records:
        try:
            events += parse_body(str(record.get("body", "")))
        except MalformedMessage:
            continue
    return events
