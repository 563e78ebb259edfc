"""The flusher Lambda: a window of the invalidations queue -> ONE CloudFront invalidation.

Every erase puts its image's CDN paths on the invalidations queue (processor/aws/sqs.py
``InvalidationQueue``); the event source mapping gathers them for its batching window
(infra/template.yaml, InvalidationWindowSeconds) and hands them here. This handler merges
the batch's paths, plans one invalidation with the pure rule (processor/rules/invalidations.py:
exact paths up to InvalidationExactPaths, else at most 5 prefix wildcards) and sends it
(processor/aws/cloudfront.py). Same image as the processor, another handler
(``ImageConfig.Command``); it imports neither libvips nor the engine.

When CloudFront says later (too many invalidations in progress, throttling: a TransientError)
every message of the batch is reported failed: they come back after the queue's visibility
timeout, and after hours of that to the dead-letter queue and its alarm. Any other error (a
refused permission, a missing distribution) fails the invocation, for the flusher's errors
alarm, and the messages come back the same way. A body that is no invalidation message is
logged whole and dropped (retrying cannot make it readable).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from processor.core.cdn import invalidation_paths
from processor.core.errors import MalformedMessage, TransientError
from processor.core.ports import CdnInvalidator
from processor.entrypoints.outcomes import NAMESPACE
from processor.rules.invalidations import MAX_EXACT_PER_FLUSH, depth, plan_flush

if TYPE_CHECKING:
    from processor.entrypoints.settings import FlushSettings

logger = Logger(service="flush")
# The namespace comes from POWERTOOLS_METRICS_NAMESPACE (imgpipe/<stack>), else NAMESPACE.
metrics = Metrics(service="flush")
metrics.namespace = metrics.namespace or NAMESPACE


@dataclass(frozen=True)
class Flushed:
    messages: int  # messages of the batch
    paths: int  # distinct paths they asked for
    planned: tuple[str, ...]  # what the CDN was asked to invalidate
    failed: tuple[str, ...] = ()  # message ids that come back (the CDN said later)
    malformed: int = 0  # bodies dropped as unreadable


def merge(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], set[str], int]:
    """(message ids, the distinct paths of every readable body, unreadable bodies)."""
    ids: list[str] = []
    paths: set[str] = set()
    malformed = 0
    for record in records:
        ids.append(str(record["messageId"]))
        try:
            paths.update(invalidation_paths(str(record.get("body", ""))))
        except MalformedMessage as e:
            malformed += 1
            logger.error(
                "malformed invalidation message dropped",
                extra={"error_code": e.code, "error": e.message, "body": record.get("body")},
            )
    return ids, paths, malformed


def flush(
    records: Iterable[Mapping[str, Any]],
    cdn: CdnInvalidator,
    *,
    max_exact: int = MAX_EXACT_PER_FLUSH,
) -> Flushed:
    """One invalidation for every path of the batch; a retryable refusal fails every message."""
    ids, paths, malformed = merge(records)
    planned = tuple(plan_flush(paths, max_exact=max_exact))
    if not planned:
        return Flushed(len(ids), 0, (), malformed=malformed)
    try:
        cdn.invalidate(planned)
    except TransientError as e:  # anything else fails the invocation (FlushErrorsAlarm)
        logger.warning(
            "the CDN says later: the batch comes back after the visibility timeout",
            extra={"error_code": e.code, "error": e.message, "messages": len(ids)},
        )
        return Flushed(len(ids), len(paths), planned, failed=tuple(ids), malformed=malformed)
    logger.info(
        "invalidated",
        extra={
            "messages": len(ids),
            "paths_asked": len(paths),
            "paths_sent": len(planned),
            "prefix_length": depth(planned),
        },
    )
    return Flushed(len(ids), len(paths), planned, malformed=malformed)


@functools.cache
def settings() -> FlushSettings:
    """The flusher's settings, read on the first invocation (ConfigError names a wrong one)."""
    from processor.core.settings import load
    from processor.entrypoints.settings import FlushSettings

    return load(FlushSettings)


@functools.cache
def invalidator() -> CdnInvalidator:
    """CloudFront on the distribution the settings name, built on the first invocation."""
    from processor.aws.clients import aws_client
    from processor.aws.cloudfront import CloudFrontInvalidator

    conf = settings()
    client = aws_client("cloudfront", region=conf.region, endpoint_url=conf.endpoint_url)
    return CloudFrontInvalidator(client, conf.distribution_id)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda's signature
    """The Lambda entry point (``processor.entrypoints.flush.lambda_handler``)."""
    done = flush(event.get("Records") or [], invalidator(), max_exact=settings().exact_paths)
    metrics.add_metric(name="InvalidationMessages", unit=MetricUnit.Count, value=done.messages)
    if done.failed:
        metrics.add_metric(name="InvalidationsDeferred", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="InvalidationPaths", unit=MetricUnit.Count, value=len(done.planned))
    if done.malformed:
        metrics.add_metric(name="MalformedMessages", unit=MetricUnit.Count, value=done.malformed)
    return {"batchItemFailures": [{"itemIdentifier": i} for i in done.failed]}
