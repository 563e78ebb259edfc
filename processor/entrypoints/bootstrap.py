"""Composition root of the processor Lambda: settings -> clients -> adapters -> service.

Built once per container, on the first invocation (``get_container``), and reused by every
invocation after it. Nothing heavy is imported at module level, so importing the handler
stays fast; boto3 and pyvips load when the container is built.

Tests: ``reset()`` drops the cached container (the next call builds from the environment
again); ``reset(build(settings, engine=...))`` installs one they built themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from processor.aws.dynamo import DynamoImageRepository
    from processor.aws.s3 import S3ObjectStore
    from processor.aws.sqs import SqsQueue
    from processor.core.ports import Clocks, ImageEngine
    from processor.core.settings import AwsSettings
    from processor.entrypoints.settings import ProcessorSettings
    from processor.service.images import ProcessorService


@dataclass(frozen=True)
class Container:
    settings: ProcessorSettings
    s3_client: Any  # exposed so tests can hook botocore events (fault injection)
    dynamodb_client: Any
    store: S3ObjectStore
    repo: DynamoImageRepository
    engine: ImageEngine
    service: ProcessorService


_container: Container | None = None


def get_container() -> Container:
    """The container of this process, built from the environment on first use."""
    global _container
    if _container is None:
        from processor.core.settings import load
        from processor.entrypoints.settings import ProcessorSettings

        _container = build(load(ProcessorSettings))  # ConfigError names a wrong variable
    return _container


def reset(container: Container | None = None) -> None:
    global _container
    _container = container


def aws_clients(settings: AwsSettings, *services: str) -> list[Any]:
    """boto3 clients for ``services`` where ``settings`` say (IMGPIPE_ENDPOINT_URL: local
    stack, tests); the attempt count comes from AWS_MAX_ATTEMPTS when set."""
    from processor.aws.clients import aws_client

    return [
        aws_client(name, region=settings.region, endpoint_url=settings.endpoint_url)
        for name in services
    ]


class QueueOnFirstUse:
    """A queue whose SQS client is made when the first message needs it: the processing queue
    for tries starved of CPU, the invalidations queue for erases. Most containers send
    neither, and a client costs cold-start time."""

    def __init__(self, settings: AwsSettings, url: str) -> None:
        self._settings, self.url = settings, url
        self._queue: SqsQueue | None = None
        self._lock = threading.Lock()

    def _sqs(self) -> SqsQueue:
        with self._lock:
            if self._queue is None:
                from processor.aws.sqs import SqsQueue

                (client,) = aws_clients(self._settings, "sqs")
                self._queue = SqsQueue(client, self.url)
            return self._queue

    def send(self, body: str) -> str:
        return self._sqs().send(body)

    def send_later(self, body: str, *, delay_s: int, attributes: Mapping[str, str]) -> None:
        self._sqs().send_later(body, delay_s=delay_s, attributes=attributes)


def build(
    settings: ProcessorSettings,
    *,
    engine: ImageEngine | None = None,
    clocks: Clocks | None = None,
) -> Container:
    """``engine`` and ``clocks``: tests hand in fakes (a fake engine advances fake clocks)."""
    from processor.aws.dynamo import DynamoImageRepository
    from processor.aws.s3 import S3ObjectStore
    from processor.service.images import ProcessorService

    s3_client, dynamodb_client = aws_clients(settings, "s3", "dynamodb")
    cdn = None
    if settings.invalidation_queue_url:
        from processor.aws.sqs import InvalidationQueue

        cdn = InvalidationQueue(QueueOnFirstUse(settings, settings.invalidation_queue_url))
    events = None
    if settings.event_bus:
        from processor.aws.eventbridge import EventBridgePublisher

        (events_client,) = aws_clients(settings, "events")
        events = EventBridgePublisher(events_client, settings.event_bus)
    if engine is None:
        from processor.entrypoints import scratch
        from processor.imaging.engine import Engine

        # A small (default: no) libvips operation cache: warm containers live for hours and
        # each upload is seen once. MALLOC_ARENA_MAX=2 is set in the function's environment
        # (infra/template.yaml): glibc reads it at process start, so it cannot be set here.
        # Spool files go to this process's own directory; what a stopped invocation left in
        # /tmp is removed first, so ephemeral storage sized for one upload has room for it.
        engine = Engine(
            settings.engine_config,
            cache_max=settings.vips_cache_max,
            tmp_dir=str(scratch.claim(room_for=settings.max_input_bytes).directory),
        )
    store = S3ObjectStore(s3_client)
    repo = DynamoImageRepository(dynamodb_client, settings.table, settings.list_shards)
    service = ProcessorService(
        store=store,
        repo=repo,
        engine=engine,
        cdn=cdn,
        events=events,
        cdn_base_url=settings.cdn_base_url.rstrip("/"),
        config=settings.engine_config,
        bucket=settings.bucket,
        raw_prefix=settings.raw_prefix,
        public_prefix=settings.public_prefix,
        sources=settings.sources,
        clocks=clocks,
        cpu_share=settings.cpu_share,
        # Without a queue (a direct S3 trigger, no IMGPIPE_QUEUE_URL) a timeout is final.
        retry_queue=QueueOnFirstUse(settings, settings.queue_url) if settings.queue_url else None,
        retry_delay_s=settings.retry_delay_s,
    )
    return Container(
        settings=settings,
        s3_client=s3_client,
        dynamodb_client=dynamodb_client,
        store=store,
        repo=repo,
        engine=engine,
        service=service,
    )
