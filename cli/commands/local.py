"""`imgpipe local`: the whole pipeline on this machine, until Ctrl-C.

An embedded AWS (moto) on loopback with the resources infra/template.yaml declares, a worker
feeding the real processor handler the way Lambda's SQS event source does, and the API with a
CloudFront stand-in and the gallery under uvicorn.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, TextIO


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "local",
        help="run the pipeline on this machine: embedded AWS, worker, API and gallery",
        description="Start moto on loopback, create the bucket, queues, notification and table "
        "that infra/template.yaml declares, run the processor on the queue and the API (with "
        "the gallery at /) until Ctrl-C. State lives in memory and is gone after a restart.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--api-port", type=int, default=8000, help="API port; 0 picks a free one")
    p.add_argument(
        "--cdn-port",
        type=int,
        default=8001,
        help="CDN stand-in port (an origin of its own, as CloudFront's); 0 picks a free one",
    )
    p.add_argument(
        "--aws-port", type=int, default=4566, help="embedded AWS port; 0 picks a free one"
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="use this AWS endpoint (e.g. LocalStack, http://127.0.0.1:4566) instead of the "
        "embedded one; resources are created there",
    )
    target.add_argument(
        "--real-aws",
        action="store_true",
        help="use real AWS (credentials from the usual places) and the deployed resources named "
        "by IMGPIPE_BUCKET, IMGPIPE_TABLE, IMGPIPE_QUEUE_URL; nothing is created",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        help="processor execution environments (default: min(cpus, 4, template maximum))",
    )
    p.add_argument(
        "--api-key",
        help="x-api-key for writes (default: $IMGPIPE_API_KEY or the local development key)",
    )
    p.add_argument(
        "--function-memory",
        type=int,
        metavar="MB",
        help="processor memory: images are sized by it, and an invocation that grows past it "
        "is stopped as on Lambda (default: the template's ProcessorMemory)",
    )
    p.add_argument(
        "--function-timeout",
        type=float,
        metavar="S",
        help="processor timeout in seconds (default: the template's)",
    )
    p.add_argument("--no-worker", action="store_true", help="do not consume the queue (API only)")
    p.add_argument(
        "--events",
        action="store_true",
        help="print every completion event (Image Processed, Failed, Deleted) as one JSON line",
    )
    p.add_argument(
        "--verbose", "-v", action="store_true", help="log every request and processed image"
    )
    p.set_defaults(func=run)


def imgpipe_command() -> str:
    """How to call this very `imgpipe` from the user's shell: the venv is not on PATH."""
    here = Path(sys.executable).parent / "imgpipe"
    if not here.exists():
        return "imgpipe"
    found = shutil.which("imgpipe")
    if found and Path(found).resolve() == here.resolve():
        return "imgpipe"
    try:
        return str(here.relative_to(Path.cwd()))
    except ValueError:
        return str(here)


def aws_cli_block(endpoint: str, region: str, bucket: str, table: str) -> list[str]:
    """Shell lines that point the AWS CLI (or any SDK) at the embedded AWS: copy, paste, run."""
    from cli.local.aws import FAKE_CREDENTIALS

    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": region,
    }
    return [
        "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()),
        f"aws s3 cp photo.jpg s3://{bucket}/raw/",
        f"aws dynamodb scan --table-name {table}",
    ]


def banner(stack: Any, out: TextIO) -> None:
    urls, res, spec, issuer = stack.urls, stack.resources, stack.spec, stack.issuer
    aws = (
        f"{urls.aws}  (S3, SQS, DynamoDB, SNS, CloudWatch)"
        if urls.aws
        else "real AWS (no endpoint)"
    )
    envs = stack.environments
    lines = [
        "imgpipe local stack is running. Ctrl-C stops it; its state lives in memory.",
        f"  gallery    {urls.gallery}",
        f"  api docs   {urls.docs}",
        f"  api        {urls.api}",
        f"  cdn        {urls.cdn}  (/thumbs/..., /optimized/..., /sizes/... made on demand)",
        f"  aws        {aws}",
        f"  bucket     {res.bucket}  (upload to raw/, renditions in public/)",
        f"  table      {res.table}",
        f"  queue      {res.queue_url}",
        f"  dlq        {res.dlq_url}",
        f"  events     {res.event_bus or '-'}  (EventBridge bus of completion events)",
        f"  worker     {envs} execution environment(s), batch size {spec.mapping.batch_size}"
        if stack.worker
        else "  worker     off",
        f"  api key    {stack.api_key}  (x-api-key header, for writes)",
        f"  issuer     {urls.issuer}  (OpenID Connect: bearer tokens for writes)",
        f"  token      curl -s -d grant_type=client_credentials -d client_id={issuer.client_id}"
        f" -d client_secret={issuer.client_secret} -d subject=ann {urls.issuer}/token",
        f"  upload     {imgpipe_command()} upload --api {urls.api} --wait PHOTO...",
    ]
    if urls.aws:
        lines.append("The AWS CLI against this stack (paste into a shell):")
        region = stack.options.region
        lines += ["    " + line for line in aws_cli_block(urls.aws, region, res.bucket, res.table)]
    lines.append("ready")
    out.write("\n".join(lines) + "\n")
    out.flush()


def run(args: argparse.Namespace) -> int:
    from cli.local.stack import LocalStack, StackOptions
    from processor.core.errors import StackError

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("cli.local").setLevel(logging.INFO)
    options = StackOptions(
        host=args.host,
        api_port=args.api_port,
        cdn_port=args.cdn_port,
        aws_port=args.aws_port,
        endpoint_url=args.endpoint_url,
        real_aws=args.real_aws,
        api_key=args.api_key,
        concurrency=args.concurrency,
        function_memory_mb=args.function_memory,
        function_timeout_s=args.function_timeout,
        worker=not args.no_worker,
        print_events=args.events,
        function_log_level="INFO" if args.verbose else "WARNING",
        api_log_level="info" if args.verbose else "warning",
    )
    stack = LocalStack(options)
    stopping = threading.Event()
    starting = True

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        if starting:  # interrupt start(); it cleans up what it had started
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack.start()
        except StackError as e:
            print(f"imgpipe local: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("imgpipe local: interrupted while starting", file=sys.stderr)
            return 130
        starting = False
        banner(stack, sys.stdout)
        while not stopping.wait(0.5):
            if not stack.healthy:
                print("imgpipe local: a component stopped; shutting down", file=sys.stderr)
                return 1
        return 0
    finally:
        starting = False
        print("imgpipe local: stopping...", file=sys.stderr, flush=True)
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("imgpipe local: stopped", file=sys.stderr, flush=True)
