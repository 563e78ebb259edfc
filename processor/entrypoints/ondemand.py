"""The on-demand Lambda: a CloudFront miss on ``/sizes/...``, through a function URL.

CloudFront's origin group asks S3 first and comes here on its 403/404 (infra/template.yaml);
this handler parses the function URL's event, lets ``OnDemand`` (processor/service/ondemand.py)
make or find the size, and answers with the bytes and the renditions' headers, or a problem
document with a stable code. Same image, settings and limits as the processor; the function
runs it with another handler (``ImageConfig.Command``). Import stays light: the container is
built on the first invocation.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from processor.core.errors import (
    ImageRejected,
    NoSuchRendition,
    OnDemandLimit,
    PipelineError,
    SizeNotAllowed,
)
from processor.entrypoints.outcomes import NAMESPACE

if TYPE_CHECKING:
    from processor.entrypoints.settings import ProcessorSettings
    from processor.service.ondemand import OnDemand, Served

logger = Logger(service="ondemand")
# The namespace comes from POWERTOOLS_METRICS_NAMESPACE (imgpipe/<stack>), else NAMESPACE.
metrics = Metrics(service="ondemand")
metrics.namespace = metrics.namespace or NAMESPACE

# A function URL answers at most 6 MB; base64 makes 4 bytes of 3. Past this the stored file
# is fetched again through the CDN (a redirect to the same path, not cached), from S3.
MAX_INLINE_BYTES = 4 * 1024 * 1024
# Refusals that stay true until the config or the image changes are cached a little by the
# CDN; anything that may pass on the next try is not cached at all.
REFUSED_CACHE = "public, max-age=300"
NO_STORE = "no-store"

STATUS: dict[type[PipelineError], int] = {
    SizeNotAllowed: 400,
    NoSuchRendition: 404,
    ImageRejected: 422,
    OnDemandLimit: 429,
}


def status_of(error: PipelineError) -> int:
    for cls, status in STATUS.items():
        if isinstance(error, cls):
            return status
    return 503 if error.retryable else 500


def build(settings: ProcessorSettings, *, engine: Any = None) -> OnDemand:
    """The service from settings (the processor's: the same bucket, table and limits)."""
    from processor.aws.dynamo import DynamoImageRepository
    from processor.aws.s3 import S3ObjectStore
    from processor.entrypoints.bootstrap import aws_clients
    from processor.service.ondemand import OnDemand

    s3_client, dynamodb_client = aws_clients(settings, "s3", "dynamodb")
    if engine is None:
        from processor.entrypoints import scratch
        from processor.imaging.engine import Engine

        engine = Engine(
            settings.engine_config,
            cache_max=settings.vips_cache_max,
            tmp_dir=str(scratch.claim(room_for=settings.max_input_bytes).directory),
        )
    return OnDemand(
        store=S3ObjectStore(s3_client),
        claims=DynamoImageRepository(dynamodb_client, settings.table, settings.list_shards),
        engine=engine,
        config=settings.on_demand,
        bucket=settings.bucket,
        public_prefix=settings.public_prefix,
        time_budget_s=settings.image_time_budget_s,
    )


@functools.cache
def service() -> OnDemand:
    from processor.core.settings import load
    from processor.entrypoints.settings import ProcessorSettings

    return build(load(ProcessorSettings))  # ConfigError names a wrong variable


def caller_of(headers: Mapping[str, str], source_ip: str | None) -> str | None:
    """The viewer: CloudFront's ``CloudFront-Viewer-Address`` (address:port), else the
    first forwarded address, else the connection's."""
    viewer = headers.get("cloudfront-viewer-address")
    if viewer:
        return viewer.rsplit(":", 1)[0]
    forwarded = headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    return source_ip


def answer(
    ondemand: OnDemand, method: str, path: str, caller: str | None
) -> tuple[dict[str, Any], str]:
    """The function URL response for one request, and the metric it counts in (the local
    CDN stand-in answers its misses with it too)."""
    if method not in ("GET", "HEAD"):
        return _problem(405, "method_not_allowed", f"{method} is not served", NO_STORE), (
            "SizesRefused"
        )
    try:
        served = ondemand.serve(path, caller)
    except PipelineError as e:
        status = status_of(e)
        cache = REFUSED_CACHE if status in (400, 404) else NO_STORE
        if status == 429:
            metric = "SizesThrottled"
        elif status >= 500:
            logger.warning("size not made", extra={"error_code": e.code, "error": e.message})
            metric = "SizeErrors"
        else:
            metric = "SizesRefused"
        return _problem(status, e.code, e.message, cache), metric
    except Exception:  # a bug: logged whole, counted, and never a half answer
        logger.exception("size not made: unexpected error")
        return _problem(500, "internal_error", "the size could not be made", NO_STORE), (
            "SizeErrors"
        )
    return _served(served, head_only=method == "HEAD"), (
        "SizesMade" if served.made else "SizesServed"
    )


def _served(served: Served, *, head_only: bool) -> dict[str, Any]:
    headers = {
        "Content-Type": served.content_type,
        "Cache-Control": served.cache_control,
        "Content-Length": str(len(served.data)),
    }
    if len(served.data) > MAX_INLINE_BYTES:
        # Stored now: the same path, asked again, is S3's to serve.
        return {
            "statusCode": 307,
            "headers": {"Location": "/" + served.key, "Cache-Control": NO_STORE},
            "body": "",
        }
    body = "" if head_only else base64.b64encode(served.data).decode("ascii")
    return {"statusCode": 200, "headers": headers, "body": body, "isBase64Encoded": True}


def _problem(status: int, code: str, message: str, cache: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/problem+json", "Cache-Control": cache},
        "body": json.dumps({"status": status, "code": code, "detail": message}),
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda's signature
    """The Lambda entry point (``processor.entrypoints.ondemand.lambda_handler``)."""
    http = event.get("requestContext", {}).get("http", {})
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        ondemand = service()
    except PipelineError as e:  # bad settings: said once per cold start, and each time
        logger.error("settings refused", extra={"error_code": e.code, "error": e.message})
        COUNTS["SizeErrors"]()
        return _problem(500, e.code, "the function is misconfigured", NO_STORE)
    response, metric = answer(
        ondemand,
        str(http.get("method", "GET")).upper(),
        str(event.get("rawPath", "")),
        caller_of(headers, http.get("sourceIp")),
    )
    COUNTS[metric]()
    return response


# One call per metric, each naming its metric: the template's alarms read these names.
COUNTS = {
    "SizesMade": lambda: metrics.add_metric(name="SizesMade", unit=MetricUnit.Count, value=1),
    "SizesServed": lambda: metrics.add_metric(name="SizesServed", unit=MetricUnit.Count, value=1),
    "SizesRefused": lambda: metrics.add_metric(name="SizesRefused", unit=MetricUnit.Count, value=1),
    "SizesThrottled": lambda: metrics.add_metric(
        name="SizesThrottled", unit=MetricUnit.Count, value=1
    ),
    "SizeErrors": lambda: metrics.add_metric(name="SizeErrors", unit=MetricUnit.Count, value=1),
}
