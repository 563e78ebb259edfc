"""The processor Lambda: SQS batches of S3 events (or a direct S3 trigger) -> the service.

Thin on purpose: first sights recorded (first_sight.py), records run side by side
(batch.py), each object event handed to ``ProcessorService`` with the invocation's time
budget (invocation.py), outcomes turned into logs, metrics and the retry decision
(outcomes.py). Import stays light (no boto3, no pyvips): the container is built on the
first invocation.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from processor.core.errors import MalformedMessage
from processor.core.events import ObjectEvent, parse_body, parse_message
from processor.core.keys import image_id
from processor.entrypoints import batch_operations
from processor.entrypoints.batch import Record, Turn, run_batch
from processor.entrypoints.bootstrap import get_container
from processor.entrypoints.first_sight import batch_events, first_sights
from processor.entrypoints.invocation import Invocation
from processor.entrypoints.outcomes import NAMESPACE, Outcomes
from processor.rules.pacing import most_received_first, runs_alone

# The logger named "processor" is the parent of every processor.* module logger: their lines
# get the same JSON format and the keys appended here.
logger = Logger(service="processor")
# The namespace comes from POWERTOOLS_METRICS_NAMESPACE (imgpipe/<stack>), else NAMESPACE.
metrics = Metrics(service="processor")
metrics.namespace = metrics.namespace or NAMESPACE
outcomes = Outcomes(logger, metrics)


def apply(event: ObjectEvent, invocation: Invocation, turn: Turn) -> None:
    """Handle one object event; raise only when the queue should try again."""
    iid = image_id(event.bucket, event.key)
    keys = {"bucket": event.bucket, "key": event.key, "image_id": iid, "event_name": event.name}
    logger.thread_safe_append_keys(**keys, sequencer=event.sequencer)  # per image in flight
    try:
        with tracer().provider.in_subsegment("## apply") as subsegment:
            subsegment.put_annotation("image_id", iid)
            with turn.image(iid) as decided:
                try:
                    budget = invocation.time_budget(event)
                finally:
                    decided()
                outcome = get_container().service.handle(event, time_budget_s=budget)
    except Exception as e:
        if outcomes.error(e):
            raise
        return
    finally:
        logger.thread_safe_remove_keys([*keys, "sequencer"])
    outcomes.outcome(outcome)


def record_handler(record: Record, turn: Turn, invocation: Invocation) -> None:
    message = SQSRecord(dict(record))
    receive_count = message.attributes.approximate_receive_count
    logger.thread_safe_append_keys(message_id=message.message_id, receive_count=receive_count)
    try:
        try:
            events = parse_body(message.body)
        except MalformedMessage as e:
            outcomes.malformed(e, message.body)
            return
        for event in events:
            apply(event, invocation, turn)
    finally:
        logger.thread_safe_remove_keys(["message_id", "receive_count"])


# Built on the first invocation, not at import: the X-Ray SDK creates botocore clients as it
# loads (about half a second), which would triple this module's import time.
tracer = functools.cache(lambda: Tracer(service="processor", patch_modules=("botocore",)))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    """The Lambda entry point (``processor.entrypoints.handler.lambda_handler``)."""
    traced = tracer().capture_lambda_handler(_handle, capture_response=False)
    result: Mapping[str, Any] = traced(event, context)
    return result


def _handle(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if batch_operations.is_batch_operation(event):
        return batch_operations.handle(event)  # a backfill job's object: queue it
    records = event.get("Records") or []
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=len(records))
    settings = get_container().settings  # bad settings fail the invocation here, naming it
    invocation = Invocation(context, settings.image_time_budget_s, settings.time_reserve_s)
    if records and all(r.get("eventSource") == "aws:sqs" for r in records):
        # Messages put off before go first: each is put off at most once in a row.
        ordered = most_received_first(records)
        # The first image starts at once and records itself; the others may wait for a turn.
        first_sights(get_container().service, batch_events(ordered[1:]), logger)
        return run_batch(
            ordered,
            functools.partial(record_handler, invocation=invocation),
            workers=settings.images_in_flight,
            alone=runs_alone,
        )
    # A direct S3 trigger (asynchronous invoke): raising makes Lambda retry the event.
    try:
        object_events = parse_message(event)
    except MalformedMessage as e:
        outcomes.malformed(e, event)
        return {"batchItemFailures": []}
    first_sights(get_container().service, object_events[1:], logger)
    for object_event in object_events:
        apply(object_event, invocation, Turn.alone())
    return {"batchItemFailures": []}
