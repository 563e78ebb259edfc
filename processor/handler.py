"""The processor Lambda: SQS batches of S3 events (or a direct S3 trigger) -> the service.

Thin on purpose: parse, hand each object event to ``ProcessorService``, turn the outcome into
log lines and metrics. Partial batch responses: a message whose work hit a retryable error
(``PipelineError.retryable``) or a bug is reported failed and SQS redelivers it (then the
dead-letter queue after maxReceiveCount); everything else, bad images included, is done.
An image is started only while the invocation has time for its budget (processor/pacing.py):
the rest of the batch is reported failed, untouched, and comes back in a later invocation.

On a multi-vCPU function the batch's messages run ``images_in_flight`` at a time (two by
default): an image's critical path is its decode plus its largest encode, so while one image's
last encode holds a core, the next image decodes on the other. Each message is still handled
once, by the same ``record_handler``, and fails alone; the memory budget per image already
divides the function's memory by the images in flight (processor/settings.py).

Import stays light (no boto3, no pyvips): the container is built on the first invocation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from processor.bootstrap import get_container
from processor.core.errors import (
    OVER_LIMIT_CODES,
    MalformedMessage,
    NotEnoughTime,
    PipelineError,
    TimeBudgetExceeded,
)
from processor.core.events import Kind, ObjectEvent, parse_body, parse_message
from processor.core.keys import image_id
from processor.pacing import image_budget, most_received_first

if TYPE_CHECKING:
    # Only for annotations: importing the service pulls pydantic models in at import time.
    from processor.service import Outcome

NAMESPACE = "imgpipe"
# The logger named "processor" is the parent of every processor.* module logger, so their
# lines get the same JSON format and the keys appended here (bucket, key, image_id).
logger = Logger(service="processor")
metrics = Metrics(namespace=NAMESPACE, service="processor")


class _Turns:
    """Records run at once but decide whether to start in batch order (most received first),
    so the pacing is the same as one after another: record n decides once records before it
    have decided (or finished without needing to). A record waits for its turn before it
    waits for its image's lock, whose holder has decided already: no cycle."""

    def __init__(self) -> None:
        self._decided = threading.Condition()
        self._next = 0  # every record before this position has decided
        self._local = threading.local()

    def reset(self) -> None:
        with self._decided:
            self._next = 0

    def take(self, position: int) -> None:
        self._local.position = position

    def wait(self) -> None:
        position = getattr(self._local, "position", 0)
        with self._decided:
            self._decided.wait_for(lambda: self._next >= position)

    def done(self) -> None:
        position = getattr(self._local, "position", 0)
        with self._decided:
            self._next = max(self._next, position + 1)
            self._decided.notify_all()


_turns = _Turns()


class _ImageLocks:
    """One lock per image in flight: two events of the same image never run at once."""

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


_images = _ImageLocks()


class OverlappingBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor, its records handled ``images_in_flight`` at a time.

    Only the loop changes: each record still goes through ``_process_record`` exactly once,
    which catches its failure and reports it (partial batch responses, unchanged). Failures
    are then put back in batch order, so the response does not depend on which finished first.
    """

    def process(self) -> list[tuple[Any, ...]]:
        workers = min(_invocation.images, len(self.records))
        if workers <= 1:
            return super().process()
        _turns.reset()

        def one(position: int, record: dict[str, Any]) -> Any:
            _turns.take(position)
            try:
                return self._process_record(record)
            finally:
                _turns.done()

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imgpipe-image") as pool:
            results = list(pool.map(one, range(len(self.records)), self.records))
        position = {record.get("messageId"): n for n, record in enumerate(self.records)}
        self.fail_messages.sort(
            key=lambda failed: position.get(getattr(failed, "message_id", None), 0)
        )
        return results


# All-failed batches are reported like any other (every message retried), not raised.
batch = OverlappingBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

_EVENT_KEYS = ("bucket", "key", "image_id", "event_name", "sequencer")


@dataclass
class _Invocation:
    """The invocation being served (one at a time per process, as on Lambda)."""

    context: LambdaContext | None = None
    started: int = 0  # images started in it
    images: int = 1  # images it works on at once (settings.images_in_flight)
    # Records run in threads when images overlap: starting one (the pacing decision and the
    # count it depends on) and the metrics they add are serialised.
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


_invocation = _Invocation()


def _time_budget(event: ObjectEvent) -> float | None:
    """The seconds this event's image may compute; NotEnoughTime when it must wait."""
    context = _invocation.context
    if event.kind is Kind.removed or context is None:
        return None
    settings = get_container().settings
    with _invocation.lock:
        remaining_s = context.get_remaining_time_in_millis() / 1000
        budget = image_budget(
            remaining_s=remaining_s,
            started=_invocation.started,
            budget_s=settings.image_time_budget_s,
            reserve_s=settings.time_reserve_s,
        )
        if budget is not None:
            _invocation.started += 1
    if budget is None:
        raise NotEnoughTime(
            f"{remaining_s:.1f} s are left in this invocation, less than an image's budget "
            f"of {settings.image_time_budget_s:g} s plus {settings.time_reserve_s:g} s: "
            "not started, it comes back later"
        )
    return budget


def apply(event: ObjectEvent) -> None:
    """Handle one object event; raise only when the queue should try again."""
    iid = image_id(event.bucket, event.key)
    # Per thread: images in flight at once each log with their own keys.
    logger.thread_safe_append_keys(
        bucket=event.bucket,
        key=event.key,
        image_id=iid,
        event_name=event.name,
        sequencer=event.sequencer,
    )
    try:
        with tracer().provider.in_subsegment("## apply") as subsegment:
            subsegment.put_annotation("image_id", iid)
            # In batch order, and one event of an image at a time: a duplicate delivery in
            # the same batch then finds the first one applied, as one after another would.
            _turns.wait()
            with _images.hold(iid):
                try:
                    budget = _time_budget(event)
                finally:
                    _turns.done()
                outcome = get_container().service.handle(event, time_budget_s=budget)
    except PipelineError as e:
        # The one retry decision, from the error's own class (processor/core/errors.py).
        if not e.retryable:
            # Trying again gives the same answer: log it, count it, and let the message go
            # rather than loop until the dead-letter queue.
            logger.error("dropped: retrying cannot help", extra=_described(e))
            _count("DroppedErrors", dimension=("error_code", e.code))
            return
        # Transient (and setup) errors: nothing was marked done; the queue retries.
        logger.warning("will be retried", extra=_described(e))
        _count("RetriedErrors", dimension=("error_code", e.code))
        raise
    except Exception:
        # A bug, not a bad image: keep the message (retries, then the dead-letter queue).
        logger.exception("unexpected error; will be retried")
        _count("RetriedErrors", dimension=("error_code", "unexpected"))
        raise
    finally:
        logger.thread_safe_remove_keys(list(_EVENT_KEYS))
    with _invocation.lock:  # Metrics' buffer is shared by the images in flight
        _emit(outcome)


def _described(error: PipelineError) -> dict[str, str]:
    return {"error_code": error.code, "error": error.message}


def _emit(outcome: Outcome) -> None:
    """Metrics of one outcome (the service already logged it, with the same keys)."""
    action = outcome.action.value
    if action == "done":
        metrics.add_metric(name="ImagesDone", unit=MetricUnit.Count, value=1)
        if outcome.reused_from:
            metrics.add_metric(name="ImagesReused", unit=MetricUnit.Count, value=1)
    elif action == "failed" and outcome.error is not None:
        code = outcome.error.code
        _count("ImagesFailed", dimension=("error_code", code))
        # The heavy inputs (issue 15): refused from the header, or stopped at their budget.
        if code in OVER_LIMIT_CODES:
            _count("ImagesOverLimit", dimension=("error_code", code))
        elif code == TimeBudgetExceeded.code:
            _count("ImagesTimedOut")
    elif action == "deleted":
        metrics.add_metric(name="ImagesDeleted", unit=MetricUnit.Count, value=1)
    else:
        _count("EventsSkipped", dimension=("reason", outcome.reason))
    if outcome.processing_ms is not None:
        metrics.add_metric(
            name="ProcessingTime", unit=MetricUnit.Milliseconds, value=outcome.processing_ms
        )
    if outcome.input_bytes:
        metrics.add_metric(name="InputBytes", unit=MetricUnit.Bytes, value=outcome.input_bytes)
    if outcome.output_bytes:
        metrics.add_metric(name="OutputBytes", unit=MetricUnit.Bytes, value=outcome.output_bytes)
    if outcome.orphaned:
        metrics.add_metric(
            name="OrphanedRenditions", unit=MetricUnit.Count, value=len(outcome.orphaned)
        )


def record_handler(record: SQSRecord) -> None:
    logger.thread_safe_append_keys(
        message_id=record.message_id,
        receive_count=record.attributes.approximate_receive_count,
    )
    try:
        try:
            events = parse_body(record.body)
        except MalformedMessage as e:
            _malformed(e, record.body)
            return
        for event in events:
            apply(event)
    finally:
        logger.thread_safe_remove_keys(["message_id", "receive_count"])


@functools.cache
def tracer() -> Tracer:
    """Built on the first invocation, not at import: the X-Ray SDK creates botocore clients
    as it loads (about half a second), which would triple this module's import time."""
    return Tracer(service="processor", patch_modules=("botocore",))


@functools.cache
def _traced() -> Callable[[dict[str, Any], LambdaContext], Mapping[str, Any]]:
    traced: Callable[[dict[str, Any], LambdaContext], Mapping[str, Any]]
    traced = tracer().capture_lambda_handler(_handle, capture_response=False)
    return traced


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    """The Lambda entry point (``processor.handler.lambda_handler``)."""
    return _traced()(event, context)


def _handle(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    records = event.get("Records") or []
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=len(records))
    settings = get_container().settings  # bad settings fail the invocation here, naming it
    _invocation.context, _invocation.started = context, 0
    _invocation.images = settings.images_in_flight
    if records and all(r.get("eventSource") == "aws:sqs" for r in records):
        # Messages put off before go first: each is put off at most once in a row.
        ordered = {**event, "Records": most_received_first(records)}
        return process_partial_response(
            event=ordered, record_handler=record_handler, processor=batch, context=context
        )
    # A direct S3 trigger (asynchronous invoke): raising makes Lambda retry the event.
    try:
        object_events = parse_message(event)
    except MalformedMessage as e:
        _malformed(e, event)
        return {"batchItemFailures": []}
    for object_event in object_events:
        apply(object_event)
    return {"batchItemFailures": []}


def _malformed(error: MalformedMessage, body: object) -> None:
    """Retrying cannot make it readable: log it whole and let it go."""
    logger.error("malformed message dropped", extra={"error": error.message, "body": body})
    _count("MalformedMessages")


def _count(name: str, dimension: tuple[str, str] | None = None) -> None:
    """A count with its own dimension (error code, skip reason), flushed at once as EMF."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": "processor"},
    ) as metric:
        if dimension is not None:
            metric.add_dimension(name=dimension[0], value=dimension[1])
