"""`imgpipe backfill`: renditions and records for images already in S3, at a chosen pace.

    imgpipe backfill s3://photos/archive/ --rate 50            # count, estimate, ask, feed
    imgpipe backfill --inventory s3://inv/photos/all/2024-05-01T01-00Z/manifest.json --dry-run
    imgpipe backfill s3://photos/archive/ --batch-operations   # an S3 Batch Operations job

Reads the processor's IMGPIPE_* variables (bucket, table, queue URL, backfill sources,
endpoint URL for the local stack) like `imgpipe reprocess`. docs/backfill.md has the policy
(originals are read in place), the guarantees and the costs. Exit codes: 0 done, 1 something
could not be sent, 2 bad settings or arguments, 130 interrupted (run the same command again
to resume).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from cli.commands.progress import Progress

if TYPE_CHECKING:
    from cli.backfill.feed import Checkpoint
    from cli.backfill.sources import Entry, Source
    from processor.entrypoints.settings import ProcessorSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backfill",
        help="derive images already in S3 (a prefix, or an S3 Inventory) at a chosen pace",
        description="Send existing objects to the processing queue as backfill messages, at "
        "--rate images/s (or the rate --concurrency processor instances sustain), after a dry "
        "run that counts them and estimates time and cost. A checkpoint file records what was "
        "sent: Ctrl-C stops between batches, and the same command resumes. Then a summary from "
        "the image records. Originals are read where they are, never copied or deleted.",
    )
    p.add_argument("source", nargs="?", metavar="s3://BUCKET/PREFIX", help="objects to list")
    p.add_argument(
        "--inventory", metavar="s3://.../manifest.json", help="an S3 Inventory (CSV or Parquet)"
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, metavar="N", help="images per second (default 10)")
    pace.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="the rate N processor instances sustain (the capacity model's time per image)",
    )
    p.add_argument("--max-cost", type=float, metavar="USD", help="stop once this is spent")
    p.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="the deployed MaxConcurrency, for the time estimate (default: the template's)",
    )
    p.add_argument(
        "--sniff", type=int, default=100, metavar="N", help="read the first bytes of N objects"
    )
    p.add_argument("--dry-run", action="store_true", help="count and estimate, send nothing")
    p.add_argument("--yes", "-y", action="store_true", help="start without asking")
    p.add_argument("--checkpoint", type=Path, metavar="FILE", help="default: one per source")
    p.add_argument("--no-wait", action="store_true", help="do not wait for the processor")
    p.add_argument(
        "--wait-timeout", type=float, default=3600, metavar="S", help="wait at most S seconds"
    )
    p.add_argument("--report", action="store_true", help="only the summary of a checkpoint")
    p.add_argument("--json", action="store_true", help="the estimate and summary as JSON")
    batch = p.add_argument_group("S3 Batch Operations (docs/backfill.md)")
    batch.add_argument(
        "--batch-operations",
        action="store_true",
        help="write the manifest and print the CreateJob request instead of feeding",
    )
    batch.add_argument("--role-arn", help="default: $IMGPIPE_BATCH_ROLE_ARN (stack output)")
    batch.add_argument("--function-arn", help="default: $IMGPIPE_PROCESSOR_ARN (stack output)")
    batch.add_argument("--submit", action="store_true", help="create the job (it waits for you)")
    p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"imgpipe backfill: {message}", file=sys.stderr)
    return 2


class _Context:
    """Settings, clients and the source, built once per run."""

    def __init__(self, settings: ProcessorSettings, source: Source, clients: dict[str, Any]):
        self.settings = settings
        self.source = source
        self.s3, self.sqs, self.dynamodb = clients["s3"], clients["sqs"], clients["dynamodb"]

    def skip(self, entry: Entry) -> str | None:
        from cli.backfill.estimate import skip_reason

        s = self.settings
        return skip_reason(
            entry,
            bucket=s.bucket,
            raw_prefix=s.raw_prefix,
            public_prefix=s.public_prefix,
            sources=s.sources,
        )


def _context(args: argparse.Namespace) -> _Context | int:
    from cli.backfill.sources import Inventory, Listing, SourceError
    from processor.core.errors import ConfigError
    from processor.core.settings import load
    from processor.entrypoints.bootstrap import aws_clients
    from processor.entrypoints.settings import ProcessorSettings

    if bool(args.source) == bool(args.inventory):
        return _error("give one source: s3://BUCKET/PREFIX or --inventory s3://.../manifest.json")
    try:
        settings = load(ProcessorSettings)
    except ConfigError as e:
        return _error(e.message)
    if not settings.queue_url and not args.batch_operations:
        return _error("IMGPIPE_QUEUE_URL is not set: a backfill sends to the processing queue")
    s3, sqs, dynamodb = aws_clients(settings, "s3", "sqs", "dynamodb")
    try:
        source: Source = (
            Inventory(s3, args.inventory) if args.inventory else Listing(s3, args.source)
        )
    except SourceError as e:
        return _error(str(e))
    return _Context(settings, source, {"s3": s3, "sqs": sqs, "dynamodb": dynamodb})


def run(args: argparse.Namespace) -> int:
    from cli.backfill.feed import Checkpoint
    from cli.backfill.sources import SourceError

    ctx = _context(args)
    if isinstance(ctx, int):
        return ctx
    path = args.checkpoint or Path(
        f"backfill-{hashlib.sha256(ctx.source.label.encode()).hexdigest()[:12]}.json"
    )
    try:
        checkpoint = Checkpoint.load(path)
    except (ValueError, KeyError) as e:
        return _error(f"{path}: {e}")
    if checkpoint is not None and checkpoint.source != ctx.source.label:
        return _error(f"{path} is the checkpoint of {checkpoint.source}, not {ctx.source.label}")
    try:
        if args.report:
            if checkpoint is None:
                return _error(f"no checkpoint at {path}: nothing to report")
            return _report(ctx, checkpoint, args)
        if args.batch_operations:
            return _batch_operations(ctx, args)
        return _backfill(ctx, checkpoint, path, args)
    except SourceError as e:
        return _error(str(e))


# --- dry run -------------------------------------------------------------------------------


def _count(ctx: _Context, sniff: int) -> Any:
    from cli.backfill.estimate import Tally
    from cli.backfill.estimate import sniff as sniff_one

    tally = Tally()
    for entry, _ in ctx.source.entries():
        reason = ctx.skip(entry)
        if reason is not None:
            tally.skipped[reason] += 1
            continue
        tally.add(entry)
        if sum(tally.sniffed.values()) < sniff:
            tally.sniffed[sniff_one(ctx.s3, entry)] += 1
    return tally


def _rate(args: argparse.Namespace, model: Any) -> float:
    if args.concurrency is not None:
        return float(model.rate_for(args.concurrency))
    return float(args.rate if args.rate is not None else 10.0)


# --- the paced feed ------------------------------------------------------------------------


def _backfill(
    ctx: _Context, checkpoint: Checkpoint | None, path: Path, args: argparse.Namespace
) -> int:
    from cli.backfill.estimate import Model, describe, estimate
    from cli.backfill.feed import Checkpoint, Feeder, Pacer, SendFailed, now_iso

    model = Model.load()
    rate = _rate(args, model)
    if rate <= 0 or (args.max_cost is not None and args.max_cost <= 0):
        return _error("--rate, --concurrency and --max-cost must be positive")
    max_concurrency = args.max_concurrency or model.max_concurrency
    if checkpoint is None or checkpoint.total is None:
        tally = _count(ctx, args.sniff)
        est = estimate(
            tally.objects,
            rate=rate,
            model=model,
            max_concurrency=max_concurrency,
            max_cost=args.max_cost,
        )
        if args.json:
            print(json.dumps({"tally": tally.to_json(), "estimate": est.to_json()}))
        else:
            print(f"backfill of {ctx.source.label}")
            print("\n".join("  " + line for line in describe(tally, est)))
        if args.dry_run:
            return 0
        if tally.objects == 0:
            print("imgpipe backfill: nothing to send (see skipped above)", file=sys.stderr)
            return 0
        if not args.yes and not _confirm():
            return _error("not started (add --yes to start without asking)")
        checkpoint = Checkpoint(
            source=ctx.source.label,
            queue_url=str(ctx.settings.queue_url),
            started_at=now_iso(),
            total=tally.objects,
        )
        checkpoint.save(path)
    elif checkpoint.finished:
        print(f"imgpipe backfill: {path} says every object was sent; the summary:", file=sys.stderr)
        return _summary(ctx, checkpoint, args)
    else:
        print(
            f"imgpipe backfill: resuming from {path}: {checkpoint.sent:,} of "
            f"{checkpoint.total:,} sent",
            file=sys.stderr,
        )
    limit = None
    if args.max_cost is not None:
        limit = model.affordable(args.max_cost)
    stop = threading.Event()
    progress = Progress(
        int(checkpoint.total or 0), label="backfill", done=checkpoint.sent, every_s=5.0
    )

    def step(state: Checkpoint) -> None:
        progress.advance(state.sent - progress.done, errors=sum(state.errors.values()))

    feeder = Feeder(
        sqs=ctx.sqs,
        source=ctx.source,
        checkpoint=checkpoint,
        path=path,
        pacer=Pacer(rate, stop),
        skip=ctx.skip,
        stop=stop,
        limit=limit,
        on_step=step,
    )
    try:
        with _stopping_on_signals(stop):
            outcome = feeder.run()
    except SendFailed as e:
        progress.close()
        print(
            f"imgpipe backfill: SQS refused a batch ({e}); {checkpoint.sent:,} sent and "
            f"checkpointed in {path}: run the same command again to resume",
            file=sys.stderr,
        )
        return 1
    progress.close()
    print(
        f"imgpipe backfill: sent {checkpoint.sent:,} of {checkpoint.total:,}"
        + (f", skipped {sum(checkpoint.skipped.values()):,}" if checkpoint.skipped else ""),
        file=sys.stderr,
    )
    if outcome == "stopped":
        print(
            f"imgpipe backfill: interrupted; {path} holds where it stopped: run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 130
    if outcome == "capped":
        print("imgpipe backfill: the cost cap is reached (--max-cost); raise it to go on")
    return _summary(ctx, checkpoint, args)


def _confirm() -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input("start? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


class _stopping_on_signals:
    """Ctrl-C and SIGTERM set ``stop``: the feed ends between two checkpointed batches."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            self.stop.set()

        handler: Callable[[int, FrameType | None], None] = on_signal
        self.previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# --- after ---------------------------------------------------------------------------------


def _queue_empty(ctx: _Context, url: str) -> bool:
    attrs = ctx.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attrs["ApproximateNumberOfMessages"])
        + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        == 0
    )


def _summary(ctx: _Context, checkpoint: Checkpoint, args: argparse.Namespace) -> int:
    if not args.no_wait:
        # Two empty looks in a row: SQS's counts are approximate.
        deadline = time.monotonic() + args.wait_timeout
        empty = 0
        while empty < 2 and time.monotonic() < deadline:
            empty = empty + 1 if _queue_empty(ctx, checkpoint.queue_url) else 0
            time.sleep(1.0)
    return _report(ctx, checkpoint, args)


def _report(ctx: _Context, checkpoint: Checkpoint, args: argparse.Namespace) -> int:
    from cli.backfill.summary import summarize
    from processor.aws.dynamo import DynamoImageRepository

    repo = DynamoImageRepository(ctx.dynamodb, ctx.settings.table, ctx.settings.list_shards)
    summary = summarize(
        repo,
        ctx.source,
        upto=checkpoint.position,
        started_at=checkpoint.started_at,
        skip=ctx.skip,
        sent=checkpoint.sent,
    )
    if args.json:
        print(json.dumps({"summary": summary.to_json(), "sent": checkpoint.sent}))
    else:
        print(f"summary of {checkpoint.sent:,} objects sent from {ctx.source.label}")
        print("\n".join("  " + line for line in summary.lines()))
    return 0


# --- S3 Batch Operations ---------------------------------------------------------------------


def _batch_operations(ctx: _Context, args: argparse.Namespace) -> int:
    import os
    import uuid

    from cli.backfill.batch_operations import (
        MANIFEST_PREFIX,
        create_job_request,
        manifest_csv,
        validate,
    )
    from processor.entrypoints.bootstrap import aws_clients

    role = args.role_arn or os.environ.get("IMGPIPE_BATCH_ROLE_ARN")
    function = args.function_arn or os.environ.get("IMGPIPE_PROCESSOR_ARN")
    if not role or not function:
        return _error(
            "--batch-operations needs the stack's BatchOperationsRoleArn and "
            "ProcessorFunctionArn (--role-arn, --function-arn or IMGPIPE_BATCH_ROLE_ARN, "
            "IMGPIPE_PROCESSOR_ARN)"
        )
    entries = [e for e, _ in ctx.source.entries() if ctx.skip(e) is None]
    if not entries:
        return _error("nothing to send (no object of the source is a backfill source)")
    key = f"{MANIFEST_PREFIX}{uuid.uuid4().hex}.csv"
    put = ctx.s3.put_object(
        Bucket=ctx.settings.bucket, Key=key, Body=manifest_csv(entries), ContentType="text/csv"
    )
    partition, account = function.split(":")[1], function.split(":")[4]
    request = create_job_request(
        account=account,
        partition=partition,
        bucket=ctx.settings.bucket,
        manifest_key=key,
        manifest_etag=str(put["ETag"]),
        function_arn=function,
        role_arn=role,
        label=ctx.source.label,
    )
    validate(request)
    print(json.dumps(request, indent=1))
    print(
        f"imgpipe backfill: manifest of {len(entries):,} objects at "
        f"s3://{ctx.settings.bucket}/{key}",
        file=sys.stderr,
    )
    if args.submit:
        (s3control,) = aws_clients(ctx.settings, "s3control")
        job = s3control.create_job(**request)
        print(f"imgpipe backfill: job {job['JobId']} created; confirm it to run", file=sys.stderr)
    return 0
