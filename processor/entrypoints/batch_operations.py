"""S3 Batch Operations' per-object invocation of the processor function: queue a backfill.

A backfill too large for one machine to feed (docs/backfill.md) is an S3 Batch Operations job
that invokes this function once per object of its manifest (LambdaInvoke). It does not process
the image here: it sends the same ``imgpipe.backfill`` message the paced feed sends, so the
queue, the processor's concurrency and its dedupe are the same for both, and answers per task:
Succeeded (queued), PermanentFailure (not a backfill source: the processor would refuse it),
TemporaryFailure (SQS refused; Batch Operations tries again). The job's completion report
lists every task's answer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal

from aws_lambda_powertools.utilities.data_classes import S3BatchOperationEvent

from processor.core.errors import PipelineError
from processor.core.events import Kind, ObjectEvent
from processor.core.messages import backfill_message
from processor.entrypoints.bootstrap import aws_clients, get_container
from processor.rules.decide import admit

ResultCode = Literal["Succeeded", "TemporaryFailure", "PermanentFailure"]


def is_batch_operation(event: Mapping[str, Any]) -> bool:
    return "invocationSchemaVersion" in event and "tasks" in event


@functools.cache
def _sqs() -> Any:
    (client,) = aws_clients(get_container().settings, "sqs")
    return client


def handle(event: dict[str, Any]) -> dict[str, Any]:
    batch = S3BatchOperationEvent(event)
    settings = get_container().settings
    results: list[dict[str, str]] = []
    # AWS sends one task per invocation today; the schema allows more, and each gets its answer.
    for task in batch.tasks:
        code: ResultCode
        bucket, key = task.s3_bucket, task.s3_key
        refused = admit(
            ObjectEvent(Kind.backfill, bucket, key),
            bucket=settings.bucket,
            raw_prefix=settings.raw_prefix,
            sources=settings.sources,
        )
        if refused is not None:
            code, text = "PermanentFailure", f"refused: {refused.reason}"
        elif not settings.queue_url:
            code, text = "PermanentFailure", "IMGPIPE_QUEUE_URL is not set"
        else:
            try:
                _sqs().send_message(
                    QueueUrl=settings.queue_url,
                    MessageBody=backfill_message(bucket, key, etag=None),
                )
                code, text = "Succeeded", "queued"
            except Exception as e:  # SQS's answer, for the report; Batch Operations retries
                message = e.message if isinstance(e, PipelineError) else str(e)
                code, text = "TemporaryFailure", message[:200]
        results.append({"taskId": task.task_id, "resultCode": code, "resultString": text})
    return {
        "invocationSchemaVersion": batch.invocation_schema_version,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": batch.invocation_id,
        "results": results,
    }
