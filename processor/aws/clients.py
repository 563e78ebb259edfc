"""The one boto3 client factory: every client of the processor, the API, the operations
commands and the local stack is made here, so timeouts, retries and endpoints agree.

Imported lazily by the composition roots: boto3 costs about 250 ms to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timeouts:
    connect: float  # seconds to open a connection
    read: float  # seconds to wait for a response byte
    attempts: int | None  # botocore "standard" retries; None: AWS_MAX_ATTEMPTS or its default 3
    pool: int = 10  # connections per client


# An API request must not hang on AWS: fail fast, the caller retries.
FOR_REQUESTS = Timeouts(connect=2, read=10, attempts=3)
# The processor streams uploads and writes renditions from the engine's threads.
FOR_WORK = Timeouts(connect=5, read=60, attempts=None, pool=16)


def aws_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None = None,
    timeouts: Timeouts = FOR_WORK,
) -> Any:
    """A boto3 client for ``service``; ``endpoint_url`` for the local stack, LocalStack, tests.

    Retries use botocore's "standard" mode (backoff with jitter on throttling and 5xx). What is
    still failing after that becomes a TransientError at the adapter (processor/aws/errors.py).
    """
    import boto3
    from botocore.config import Config

    retries: dict[str, Any] = {"mode": "standard"}
    if timeouts.attempts is not None:
        retries["max_attempts"] = timeouts.attempts
    config = Config(
        region_name=region,
        signature_version="s3v4" if service == "s3" else None,
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        retries=retries,
        max_pool_connections=timeouts.pool,
        # A local endpoint is one host: buckets in the path, not in the host name.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session(region_name=region).client(
        service, endpoint_url=endpoint_url, config=config
    )
