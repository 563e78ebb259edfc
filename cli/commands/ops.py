"""`imgpipe reprocess` and `imgpipe redrive`: operate the deployed (or local) pipeline.

Both read the same IMGPIPE_* variables as the Lambda (bucket, table, queue URLs, endpoint
URL for the local stack) and talk to AWS through the processor's adapters. Progress goes to
stderr; the exit code is 0 when everything was queued or moved, 1 when something was not,
2 for bad settings or arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TypeVar

from cli.commands.progress import Progress

if TYPE_CHECKING:
    from processor.core.record import ImageRecord
    from processor.core.settings import AwsSettings

S = TypeVar("S", bound="AwsSettings")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "reprocess",
        help="re-derive images through the processing queue",
        description="Queue images to be derived again by the processor. By default, every "
        "image whose rendition config version differs from the current one "
        "(IMGPIPE_RENDITIONS); or --all; or --ids. Deleted images are never queued.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every image that is not deleted")
    which.add_argument("--ids", nargs="+", metavar="ID", help="these image ids")
    p.add_argument(
        "--config-version",
        metavar="HEX",
        help="compare with this config version instead of the one computed from the env",
    )
    p.add_argument("--dry-run", action="store_true", help="print the ids, queue nothing")
    p.set_defaults(func=run_reprocess)

    r = sub.add_parser(
        "redrive",
        help="move dead-letter messages back to the processing queue",
        description="Move every message from the dead-letter queue (IMGPIPE_DLQ_URL) back to "
        "the processing queue (IMGPIPE_QUEUE_URL), after the cause was fixed. Each message "
        "is sent before it is deleted: a crash can duplicate one, never lose one.",
    )
    r.add_argument("--max", type=int, default=None, metavar="N", help="move at most N messages")
    r.set_defaults(func=run_redrive)


def _load(cls: type[S]) -> S | None:
    """Settings from the environment, or None after saying which variables are wrong."""
    from processor.core.errors import ConfigError
    from processor.core.settings import load

    try:
        return load(cls)
    except ConfigError as e:
        _error(e.message)
        return None


def _error(message: str) -> int:
    print(f"imgpipe: {message}", file=sys.stderr)
    return 2


def run_reprocess(args: argparse.Namespace) -> int:
    from processor.aws.dynamo import DynamoImageRepository
    from processor.aws.sqs import SqsQueue
    from processor.core.errors import PipelineError
    from processor.core.messages import reprocess_message
    from processor.core.record import Status
    from processor.entrypoints.bootstrap import aws_clients
    from processor.entrypoints.settings import ProcessorSettings

    settings = _load(ProcessorSettings)
    if settings is None:
        return 2
    if not settings.queue_url:
        return _error("IMGPIPE_QUEUE_URL is not set: reprocess sends to the processing queue")
    current = args.config_version or settings.engine_config.version
    dynamodb, sqs = aws_clients(settings, "dynamodb", "sqs")
    repo = DynamoImageRepository(dynamodb, settings.table, settings.list_shards)

    problems = 0
    targets: list[ImageRecord] = []
    try:
        if args.ids:
            for iid in dict.fromkeys(args.ids):
                record = repo.get(iid)
                if record is None or record.status is Status.deleted:
                    print(f"imgpipe reprocess: {iid}: no such image", file=sys.stderr)
                    problems += 1
                else:
                    targets.append(record)
        else:
            for record in repo.iter_images():
                if args.all or record.config_version != current:
                    targets.append(record)
    except PipelineError as e:
        print(f"imgpipe reprocess: reading {settings.table}: {e.message}", file=sys.stderr)
        return 1

    what = "all" if args.all else "given" if args.ids else f"config version != {current}"
    if args.dry_run:
        for record in targets:
            print(f"{record.id}\t{record.config_version or '-'}\t{record.source_key}")
        print(f"imgpipe reprocess: {len(targets)} images ({what}); dry run", file=sys.stderr)
        return 1 if problems else 0

    queue = SqsQueue(sqs, settings.queue_url)
    progress = Progress(len(targets), label="reprocess")
    sent = 0
    try:
        for start in range(0, len(targets), 10):
            chunk = targets[start : start + 10]
            queue.send_batch(
                [reprocess_message(r.bucket or settings.bucket, r.source_key) for r in chunk]
            )
            sent += len(chunk)
            progress.advance(len(chunk), note=chunk[-1].source_key)
    except PipelineError as e:
        progress.close()
        print(f"imgpipe reprocess: queued {sent} of {len(targets)}: {e.message}", file=sys.stderr)
        return 1
    progress.close()
    print(f"imgpipe reprocess: queued {sent} images ({what})", file=sys.stderr)
    return 1 if problems else 0


def run_redrive(args: argparse.Namespace) -> int:
    from processor.aws.sqs import SqsQueue
    from processor.core.errors import PipelineError
    from processor.core.settings import AwsSettings
    from processor.entrypoints.bootstrap import aws_clients

    settings = _load(AwsSettings)
    if settings is None:
        return 2
    if not settings.queue_url or not settings.dlq_url:
        return _error("redrive needs IMGPIPE_QUEUE_URL and IMGPIPE_DLQ_URL")
    if args.max is not None and args.max < 1:
        return _error("--max must be at least 1")
    (sqs,) = aws_clients(settings, "sqs")
    dlq, queue = SqsQueue(sqs, settings.dlq_url), SqsQueue(sqs, settings.queue_url)

    moved = 0
    try:
        total = dlq.approximate_count()
        limit = total if args.max is None else min(args.max, total)
        progress = Progress(limit, label="redrive")
        empty_polls = 0
        # Two empty polls in a row: the queue is drained (one can miss messages in flight).
        while empty_polls < 2 and (args.max is None or moved < args.max):
            want = 10 if args.max is None else min(10, args.max - moved)
            messages = dlq.receive(max_messages=want, wait_seconds=1)
            if not messages:
                empty_polls += 1
                continue
            empty_polls = 0
            queue.send_batch([m.body for m in messages])  # first send, then delete: never a loss
            dlq.delete(messages)
            moved += len(messages)
            progress.advance(len(messages))
        progress.close()
    except PipelineError as e:
        print(f"imgpipe redrive: moved {moved}, then: {e.message}", file=sys.stderr)
        return 1
    print(f"imgpipe redrive: moved {moved} messages back to the queue", file=sys.stderr)
    return 0
