"""Log lines and metrics from what handling an event gave: an Outcome, or an error.

The one retry decision is made here, from the error's own class (processor/core/errors.py):
a retryable error (and a bug) fails the message, so SQS redelivers it; any other is logged,
counted and let go, since trying again gives the same answer.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from processor.core.errors import (
    OVER_LIMIT_CODES,
    MalformedMessage,
    PipelineError,
    TimeBudgetExceeded,
)

if TYPE_CHECKING:
    # Only for annotations: importing the service pulls pydantic models in at import time.
    from processor.service.images import Outcome

# Where metrics go when the function is not told (tests, `imgpipe process`): a deployed stack
# sets POWERTOOLS_METRICS_NAMESPACE to imgpipe/<stack name>, so one stack's alarms and dashboard
# never read another's images.
NAMESPACE = "imgpipe"


class Outcomes:
    """One per process; thread-safe: images in flight at once share Metrics' buffer."""

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        self.logger = logger
        self.metrics = metrics
        self._lock = threading.Lock()

    def error(self, error: Exception) -> bool:
        """Log and count an error that ended an event; True when the queue should retry."""
        if not isinstance(error, PipelineError):
            # A bug, not a bad image: keep the message (retries, then the dead-letter queue).
            self.logger.exception("unexpected error; will be retried")
            self.count("RetriedErrors", dimension=("error_code", "unexpected"))
            return True
        described = {"error_code": error.code, "error": error.message}
        if not error.retryable:
            self.logger.error("dropped: retrying cannot help", extra=described)
            self.count("DroppedErrors", dimension=("error_code", error.code))
            return False
        # Transient (and setup) errors: nothing was marked done; the queue retries.
        self.logger.warning("will be retried", extra=described)
        self.count("RetriedErrors", dimension=("error_code", error.code))
        return True

    def malformed(self, error: MalformedMessage, body: object) -> None:
        """Retrying cannot make it readable: log it whole and let it go."""
        self.logger.error("malformed message dropped", extra={"error": error.message, "body": body})
        self.count("MalformedMessages")

    def outcome(self, outcome: Outcome) -> None:
        """Metrics of one outcome (the service already logged it, with the same keys)."""
        with self._lock:
            self._outcome(outcome)

    def _outcome(self, outcome: Outcome) -> None:
        action = outcome.action.value
        if action == "done":
            self.metrics.add_metric(name="ImagesDone", unit=MetricUnit.Count, value=1)
            if outcome.reused_from:
                self.metrics.add_metric(name="ImagesReused", unit=MetricUnit.Count, value=1)
        elif action == "failed" and outcome.error is not None:
            code = outcome.error.code
            self.count("ImagesFailed", dimension=("error_code", code))
            # The heavy inputs: refused from the header, or stopped at their budget.
            if code in OVER_LIMIT_CODES:
                self.count("ImagesOverLimit", dimension=("error_code", code))
            elif code == TimeBudgetExceeded.code:
                self.count("ImagesTimedOut")
        elif action == "retried":
            # Starved of CPU: back later, alone; counted again by how it ends.
            self.count("ImagesRetried", dimension=("reason", outcome.reason))
        elif action == "deleted":
            self.metrics.add_metric(name="ImagesDeleted", unit=MetricUnit.Count, value=1)
        else:
            self.count("EventsSkipped", dimension=("reason", outcome.reason))
        if outcome.processing_ms is not None:
            self.metrics.add_metric(
                name="ProcessingTime", unit=MetricUnit.Milliseconds, value=outcome.processing_ms
            )
        if outcome.input_bytes:
            self.metrics.add_metric(
                name="InputBytes", unit=MetricUnit.Bytes, value=outcome.input_bytes
            )
        if outcome.output_bytes:
            self.metrics.add_metric(
                name="OutputBytes", unit=MetricUnit.Bytes, value=outcome.output_bytes
            )
        if outcome.orphaned:
            self.metrics.add_metric(
                name="OrphanedRenditions", unit=MetricUnit.Count, value=len(outcome.orphaned)
            )

    def count(self, name: str, dimension: tuple[str, str] | None = None) -> None:
        """A count with its own dimension (error code, skip reason), flushed at once as EMF."""
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=self.metrics.namespace or NAMESPACE,
            default_dimensions={"service": "processor"},
        ) as metric:
            if dimension is not None:
                metric.add_dimension(name=dimension[0], value=dimension[1])
