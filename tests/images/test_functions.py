"""Both function images run as Lambda runs them, against the embedded AWS.

GIVEN the local stack's AWS (moto's server on loopback, provisioned from infra/template.yaml)
and a batch of uploads (good images, a bad one, one whose S3 reads fail with SlowDown),
WHEN the processor image gets the batch from the queue through the Runtime API, exactly as
the local stack's event source mapping hands batches to its in-process function,
THEN its renditions and records are the ones the local stack itself makes from the same
uploads, the bad image's message is done with a failed record, and the faulty one comes
back as a batchItemFailures entry (and is done on the retry).
The API image then answers API Gateway events as the local stack's API answers HTTP.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from processor.local.invoker import InvocationFailed
from processor.local.stack import LocalStack, StackOptions
from processor.local.worker import MappingConfig, SqsWorker
from tests.conftest import BAD, GOOD
from tests.images import MARKS
from tests.images.conftest import Built
from tests.images.engine import DockerEngine
from tests.images.fault_proxy import FaultProxy
from tests.images.lambda_container import LambdaFunction
from tests.images.report import Report

pytestmark = MARKS

REGION = "us-east-1"
UPLOADS = {
    "raw/good/Landscape_6.jpg": GOOD / "Landscape_6.jpg",  # EXIF orientation
    "raw/good/p3.png": GOOD / "p3.png",  # wide-gamut ICC profile
    "raw/good/5_webp_a.webp": GOOD / "5_webp_a.webp",  # alpha
    "raw/good/animated-loop-3.gif": GOOD / "animated-loop-3.gif",  # animated
    "raw/bad/corrupt-header.jpg": BAD / "corrupt-header.jpg",
    "raw/fault/320x240.jpg": GOOD / "320x240.jpg",  # its reads fail with SlowDown, once
}
BAD_KEY = "raw/bad/corrupt-header.jpg"
FAULT_KEY = "raw/fault/320x240.jpg"
# Differ between any two runs (clocks, durations, S3's event sequencer): not compared.
VOLATILE = {"created_at", "updated_at", "processing_ms", "timings", "sequencer"}


@dataclass
class Snapshot:
    records: dict[str, dict[str, Any]]  # source key -> the record less its volatile fields
    objects: dict[str, str]  # public/ key -> sha256 of the bytes


def clients(endpoint: str) -> dict[str, Any]:
    return {
        name: boto3.client(name, region_name=REGION, endpoint_url=endpoint)
        for name in ("s3", "sqs", "dynamodb")
    }


def snapshot(stack: LocalStack) -> Snapshot:
    assert stack.urls is not None and stack.resources is not None
    aws = clients(str(stack.urls.aws))
    items = aws["dynamodb"].get_paginator("scan").paginate(TableName=stack.resources.table)
    records = {}
    for page in items:
        for item in page["Items"]:
            plain = boto3.dynamodb.types.TypeDeserializer()
            record = {k: plain.deserialize(v) for k, v in item.items()}
            records[str(record["source_key"])] = {
                k: v for k, v in record.items() if k not in VOLATILE
            }
    objects = {}
    listing = aws["s3"].get_paginator("list_objects_v2")
    for page in listing.paginate(Bucket=stack.resources.bucket, Prefix="public/"):
        for entry in page.get("Contents", []):
            body = aws["s3"].get_object(Bucket=stack.resources.bucket, Key=entry["Key"])
            objects[entry["Key"]] = hashlib.sha256(body["Body"].read()).hexdigest()
    return Snapshot(records, objects)


def upload(stack: LocalStack) -> None:
    assert stack.urls is not None and stack.resources is not None
    s3 = clients(str(stack.urls.aws))["s3"]
    for key, path in UPLOADS.items():
        s3.put_object(Bucket=stack.resources.bucket, Key=key, Body=path.read_bytes())


def reset(stack: LocalStack) -> None:
    """moto's state is one per process: the next stack must not find this one's."""
    assert stack.urls is not None
    request = urllib.request.Request(f"{stack.urls.aws}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()


def terminal(stack: LocalStack, count: int, timeout_s: float) -> Snapshot:
    deadline = time.monotonic() + timeout_s
    while True:
        taken = snapshot(stack)
        statuses = [r.get("status") for r in taken.records.values()]
        if len(statuses) >= count and all(s in ("done", "failed") for s in statuses):
            return taken
        if time.monotonic() > deadline:
            raise AssertionError(f"the local stack did not finish: {statuses}")
        time.sleep(0.5)


class ContainerInvoker:
    """The local stack's Invoker on a function container: what its SQS worker calls."""

    def __init__(self, function: LambdaFunction) -> None:
        self.function = function

    def invoke(self, event: dict[str, Any]) -> Any:
        outcome = self.function.invoke(event)
        if outcome.kind != "response":
            raise InvocationFailed(f"{outcome.kind}: {outcome.payload}")
        return outcome.payload

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def reference() -> Snapshot:
    """What the local stack itself makes of the uploads (its in-process processor)."""
    stack = LocalStack(StackOptions(api_port=0, aws_port=0, concurrency=1))
    stack.start()
    try:
        upload(stack)
        return terminal(stack, len(UPLOADS), timeout_s=180)
    finally:
        reset(stack)
        stack.stop()


@dataclass
class Run:
    stack: LocalStack
    first: Any  # the processor's response to the first batch
    second: Any  # ... to the retried message
    first_ids: dict[str, str]  # source key -> message id in the first batch
    proxy_faults: int
    result: Snapshot
    function: LambdaFunction


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            return messages
        messages += got


def source_key(message: dict[str, Any]) -> str:
    body = json.loads(message["Body"])
    records = body.get("Records") or [{}]
    return str(records[0].get("s3", {}).get("object", {}).get("key", body.get("Event", "")))


@pytest.fixture(scope="module")
def run(
    reference: Snapshot, engine: DockerEngine, images: dict[str, Built], report: Report
) -> Iterator[Run]:
    """The same uploads, processed by the processor image instead."""
    stack = LocalStack(StackOptions(api_port=0, aws_port=0, worker=False))
    stack.start()
    assert stack.urls is not None and stack.resources is not None and stack.spec is not None
    proxy = FaultProxy(str(stack.urls.aws)).start()
    spec, resources = stack.spec, stack.resources
    environment = {
        **spec.environment(
            spec.processor, queue_url=resources.queue_url, dlq_url=resources.dlq_url
        ),
        "IMGPIPE_BUCKET": resources.bucket,
        "IMGPIPE_TABLE": resources.table,
        "IMGPIPE_ENDPOINT_URL": proxy.url,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon to send segments to
    }
    function = LambdaFunction(
        engine,
        images["processor"].ref,
        name=spec.function_name,
        environment=environment,
        memory_mb=spec.processor.memory,
        timeout_s=float(spec.processor.timeout),
    )
    try:
        function.start()
        report.add("processor.init_s", function.init_s)
        upload(stack)
        sqs = clients(str(stack.urls.aws))["sqs"]
        worker = SqsWorker(
            sqs,
            [ContainerInvoker(function)],
            MappingConfig(
                queue_url=resources.queue_url, queue_arn=resources.queue_arn, region=REGION
            ),
        )
        # WHEN the whole batch arrives at once, the faulty object's reads failing
        proxy.fail(resources.bucket, FAULT_KEY)
        batch = receive_all(sqs, resources.queue_url)
        ids = {source_key(m): m["MessageId"] for m in batch}
        worker.run_batch(batch, ContainerInvoker(function))
        first = function.invocations[-1]
        report.add("processor.first_invocation_s", first.seconds)
        report.add("processor.first_batch_messages", len(batch))
        faults = proxy.faults
        # ... and the message that came back is delivered again, S3 healthy this time
        proxy.fail(resources.bucket, None)
        for message in batch:
            if message["MessageId"] in _failed(first.payload):
                sqs.change_message_visibility(
                    QueueUrl=resources.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
        retry = receive_all(sqs, resources.queue_url)
        worker.run_batch(retry, ContainerInvoker(function))
        second = function.invocations[-1]
        report.add("processor.warm_invocation_s", second.seconds)
        yield Run(stack, first.payload, second.payload, ids, faults, snapshot(stack), function)
    finally:
        function.stop()
        proxy.stop()
        reset(stack)
        stack.stop()


def _failed(response: Any) -> set[str]:
    return {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}


def test_processor_image_makes_what_the_local_stack_makes(reference: Snapshot, run: Run) -> None:
    assert run.function.invocations[0].kind == "response", run.function.logs()
    assert set(reference.records) == set(UPLOADS)
    done = [k for k, r in reference.records.items() if r["status"] == "done"]
    assert len(done) == len(UPLOADS) - 1 and all(
        r["renditions"] for r in map(reference.records.get, done)
    )
    assert run.result.records == reference.records
    assert run.result.objects == reference.objects
    assert len(run.result.objects) >= 3 * len(done)


def test_a_bad_image_is_done_with_a_failed_record(run: Run) -> None:
    assert run.first_ids[BAD_KEY] not in _failed(run.first)
    record = run.result.records[BAD_KEY]
    assert record["status"] == "failed"
    assert record["error"]["code"] == "corrupt_image"
    assert not any(key.startswith(f"public/{record['id']}") for key in run.result.objects)


def test_a_transient_fault_comes_back_as_a_batch_item_failure(run: Run) -> None:
    # Only the faulty object's message is handed back; the rest of the batch is done.
    assert _failed(run.first) == {run.first_ids[FAULT_KEY]}
    assert run.proxy_faults >= 1
    assert _failed(run.second) == set()
    assert run.result.records[FAULT_KEY]["status"] == "done"
