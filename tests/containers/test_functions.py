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
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from pydantic import BaseModel

from cli.local.invoker import InvocationFailed
from cli.local.stack import LocalStack, StackOptions
from cli.local.worker import MappingConfig, SqsWorker
from tests.conftest import BAD, GOOD
from tests.containers import MARKS
from tests.containers.conftest import Built
from tests.containers.engine import DockerEngine
from tests.containers.fault_proxy import FaultProxy
from tests.containers.lambda_container import LambdaFunction
from tests.containers.report import Report

pytestmark = [pytest.mark.image, *MARKS]

REGION = "us-east-1"


def _phone_heic() -> Path:
    """A phone photo as iPhones save it: HEVC-coded HEIC, stored 96x64 with EXIF orientation
    6 (shown 64x96). Made by the test-only encoder (pillow-heif, GPL x265: never in an image)."""
    from tests.processor.imaging import heic_samples as hs

    folder = Path(tempfile.mkdtemp(prefix="imgpipe-image-test-"))
    return hs.save(hs.pattern(96, 64), folder / "IMG_0001.HEIC", exif=hs.exif_bytes(6))


HEIC_KEY = "raw/good/IMG_0001.HEIC"
UPLOADS = {
    "raw/good/Landscape_6.jpg": GOOD / "Landscape_6.jpg",  # EXIF orientation
    "raw/good/p3.png": GOOD / "p3.png",  # wide-gamut ICC profile
    "raw/good/5_webp_a.webp": GOOD / "5_webp_a.webp",  # alpha
    "raw/good/animated-loop-3.gif": GOOD / "animated-loop-3.gif",  # animated
    "raw/bad/corrupt-header.jpg": BAD / "corrupt-header.jpg",
    "raw/fault/320x240.jpg": GOOD / "320x240.jpg",  # its reads fail with SlowDown, once
    HEIC_KEY: _phone_heic(),  # decoded by the image's own pi-heif (libde265)
}
BAD_KEY = "raw/bad/corrupt-header.jpg"
FAULT_KEY = "raw/fault/320x240.jpg"
# Differ between any two runs (clocks, durations, S3's event sequencer): not compared;
# sort_key is "<created_at>#<id>".
VOLATILE = {"created_at", "updated_at", "sort_key", "processing_ms", "timings", "sequencer"}


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
            record = {k: TypeDeserializer().deserialize(v) for k, v in item.items()}
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
    stack.reset_aws()


def terminal(stack: LocalStack, count: int, timeout_s: float) -> Snapshot:
    deadline = time.monotonic() + timeout_s
    while True:
        taken = snapshot(stack)
        statuses = [r.get("status") for r in taken.records.values()]
        # Final, and each final state's event sent (the outbox emptied after the save).
        settled = not any(r.get("pending_event") for r in taken.records.values())
        if len(statuses) >= count and all(s in ("done", "failed") for s in statuses) and settled:
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
    stack = LocalStack(StackOptions(api_port=0, cdn_port=0, aws_port=0, concurrency=1))
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
    key = records[0].get("s3", {}).get("object", {}).get("key", body.get("Event", ""))
    return urllib.parse.unquote_plus(str(key))  # S3 events URL-encode keys


@pytest.fixture(scope="module")
def run(
    reference: Snapshot, engine: DockerEngine, images: dict[str, Built], report: Report
) -> Iterator[Run]:
    """The same uploads, processed by the processor image instead."""
    stack = LocalStack(StackOptions(api_port=0, cdn_port=0, aws_port=0, worker=False))
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


def differences(got: dict[str, Any], wanted: dict[str, Any], path: str = "") -> list[str]:
    """Where two records (JSON-like) differ, as readable paths: the assertion's message."""
    if isinstance(got, dict) and isinstance(wanted, dict):
        found = []
        for key in sorted(set(got) | set(wanted), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in got or key not in wanted:
                found.append(
                    f"{where}: only in {'the image run' if key in got else 'the local stack'}"
                )
            else:
                found += differences(got[key], wanted[key], where)
        return found
    return [] if got == wanted else [f"{path}: image {got!r} != local {wanted!r}"]


def _failed(response: Any) -> set[str]:
    return {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}


def test_processor_image_makes_what_the_local_stack_makes(reference: Snapshot, run: Run) -> None:
    assert run.function.invocations[0].kind == "response", run.function.logs()
    assert set(reference.records) == set(UPLOADS)
    done = [k for k, r in reference.records.items() if r["status"] == "done"]
    assert len(done) == len(UPLOADS) - 1 and all(
        r["renditions"] for r in map(reference.records.get, done)
    )
    assert differences(run.result.records, reference.records) == []
    assert run.result.objects == reference.objects
    assert len(run.result.objects) >= 3 * len(done)


def test_a_phone_heic_comes_out_upright_from_the_image(run: Run) -> None:
    record = run.result.records[HEIC_KEY]
    assert record["status"] == "done", record.get("error")
    facts = record["facts"]
    assert (facts["format"], facts["width"], facts["height"]) == ("heic", 64, 96)
    assert {r["format"] for r in record["renditions"]} >= {"jpeg", "webp"}


def test_an_animated_gif_ends_done_with_an_animated_webp_from_the_image(run: Run) -> None:
    record = run.result.records["raw/good/animated-loop-3.gif"]
    assert record["status"] == "done", record.get("error")
    facts = record["facts"]
    assert (facts["animated"], facts["frames"], facts["loop"]) == (True, 10, 3)
    webps = [r for r in record["renditions"] if r["format"] == "webp"]
    assert len(webps) == 2 and all(r["animated"] for r in webps)
    # the files themselves are in the bucket (the same bytes as the local stack's: above)
    assert all(f"public/{r['key']}" in run.result.objects for r in webps)


def test_a_bad_image_is_done_with_a_failed_record(run: Run) -> None:
    assert run.first_ids[BAD_KEY] not in _failed(run.first)
    record = run.result.records[BAD_KEY]
    assert record["status"] == "failed"
    assert record["error"]["code"] == "corrupt_image"
    assert not any(key.startswith(f"public/{record['id']}") for key in run.result.objects)


def test_the_processor_image_makes_a_size_on_demand_as_the_url_function_runs_it(
    run: Run, engine: DockerEngine, images: dict[str, Built]
) -> None:
    """The sizes function: the processor image with the template's other Command, given
    function URL events as CloudFront's origin group sends them (docs/sizes.md)."""
    import base64

    import pyvips

    from infra import template as tpl
    from tests.conftest import ROOT

    assert run.stack.urls is not None
    record = run.result.records["raw/good/Landscape_6.jpg"]
    path = f"/sizes/{record['id']}-{record['content_version']}-160w.webp"
    event = json.loads((ROOT / "tests" / "events" / "function_url_get_size.json").read_text())
    function = LambdaFunction(
        engine,
        images["processor"].ref,
        name="imgpipe-sizes",
        environment={**run.function.environment, "IMGPIPE_ENDPOINT_URL": str(run.stack.urls.aws)},
        timeout_s=30.0,
        command=tpl.handlers()["OnDemandFunction"],
    )
    answers = []
    with function:
        for asked in (path, path, path.replace("-160w", "-161w")):
            answers.append(function.invoke({**event, "rawPath": asked}))
    assert [a.kind for a in answers] == ["response"] * 3, function.logs()
    made, again, refused = (a.payload for a in answers)
    assert made["statusCode"] == 200 and made["headers"]["Content-Type"] == "image/webp"
    data = base64.b64decode(made["body"])
    assert pyvips.Image.new_from_buffer(data, "").width == 160
    assert base64.b64decode(again["body"]) == data  # the stored file, read back
    assert refused["statusCode"] == 400
    stored = clients(str(run.stack.urls.aws))["s3"].get_object(
        Bucket=run.stack.resources.bucket if run.stack.resources else "", Key=f"public{path}"
    )
    assert stored["Body"].read() == data


def test_a_transient_fault_comes_back_as_a_batch_item_failure(run: Run) -> None:
    # Only the faulty object's message is handed back; the rest of the batch is done.
    assert _failed(run.first) == {run.first_ids[FAULT_KEY]}
    assert run.proxy_faults >= 1
    assert _failed(run.second) == set()
    assert run.result.records[FAULT_KEY]["status"] == "done"


# ------------------------------------------------------------------ the API image ------------

EVENTS = Path(__file__).resolve().parents[1] / "events"


def gateway_event(path: str) -> dict[str, Any]:
    """A recorded API Gateway HTTP API (payload 2.0) GET event, retargeted at ``path``."""
    event: dict[str, Any] = json.loads((EVENTS / "apigw_get_healthz.json").read_text())
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    return event


def settings_environment(settings: Any) -> dict[str, str]:
    """The environment that gives ``settings`` (an ApiSettings) to the function."""
    env: dict[str, str] = {}
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, list | tuple):
            value = ",".join(map(str, value))
        if isinstance(value, BaseModel):  # a nested setting is read as JSON
            value = value.model_dump_json()
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        env[alias or f"IMGPIPE_{name.upper()}"] = str(value)
    return env


@pytest.fixture(scope="module")
def api(run: Run, engine: DockerEngine, images: dict[str, Built], report: Report) -> Iterator[Any]:
    """The API image over the processor run's records, and the local stack's own API."""
    stack = run.stack
    assert stack.spec is not None and stack.urls is not None
    function = LambdaFunction(
        engine,
        images["api"].ref,
        name=f"{stack.spec.stack_name}-api",
        environment=settings_environment(stack.api_settings()),
        memory_mb=stack.spec.api.memory,
        timeout_s=float(stack.spec.api.timeout),
    )
    with function:
        report.add("api.init_s", function.init_s)
        first = function.invoke(gateway_event("/healthz"))
        report.add("api.first_invocation_s", first.seconds)
        yield function, stack.urls.api, first


def local_get(base: str, path: str) -> tuple[int, str, str]:
    request = urllib.request.Request(base + path, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read().decode()
            return response.status, response.headers.get("content-type", ""), body
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def function_get(function: LambdaFunction, path: str) -> tuple[int, str, str]:
    response = function.response(gateway_event(path))
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    assert not response.get("isBase64Encoded"), "text answers are not base64"
    return response["statusCode"], headers.get("content-type", ""), response.get("body", "")


def same_json(got: str, wanted: str) -> None:
    assert differences(json.loads(got), json.loads(wanted)) == []


def test_api_image_health_and_image_routes_answer_as_the_local_stack(api: Any, run: Run) -> None:
    function, base, first = api
    assert first.kind == "response", function.logs()
    done = {k: r for k, r in run.result.records.items() if r["status"] == "done"}
    some_id = next(iter(done.values()))["id"]
    for path in ("/healthz", "/images", f"/images/{some_id}", "/images/no-such-image"):
        status, kind, body = function_get(function, path)
        local_status, local_kind, local_body = local_get(base, path)
        assert (status, kind) == (local_status, local_kind), path
        same_json(body, local_body)
    listed = json.loads(function_get(function, "/images")[2])
    assert listed["data"] and {i["id"] for i in listed["data"]} <= {
        r["id"] for r in run.result.records.values()
    }


def test_api_image_serves_its_openapi_document_and_docs(api: Any) -> None:
    function, base, _ = api
    status, kind, body = function_get(function, "/openapi.json")
    assert (status, kind) == (200, "application/json")
    document = json.loads(body)
    local = json.loads(local_get(base, "/openapi.json")[2])
    # The local stack adds its own routes (gallery, CDN stand-in); the function's are the same.
    assert document["info"] == local["info"]
    for path, operations in document["paths"].items():
        assert differences(operations, local["paths"].get(path, {})) == [], path
    status, kind, page = function_get(function, "/docs")
    assert status == 200 and kind.startswith("text/html")
    assert page == local_get(base, "/docs")[2]


# ------------------------------------------------------------------ errors Lambda reports -----


def test_bad_settings_fail_the_invocation_naming_the_variable(
    engine: DockerEngine, images: dict[str, Built]
) -> None:
    # GIVEN the API image deployed with a setting its validation refuses
    function = LambdaFunction(
        engine,
        images["api"].ref,
        name="imgpipe-api-misconfigured",
        environment={
            "IMGPIPE_BUCKET": "imgpipe-bucket",
            "IMGPIPE_TABLE": "imgpipe-table",
            "IMGPIPE_CDN_BASE_URL": "https://cdn.example.com",
            "IMGPIPE_AUTH_MODE": "nobody",
        },
    )
    with function:
        # WHEN it gets an event, THEN Lambda is told the error, with the variable's name
        outcome = function.invoke(gateway_event("/healthz"))
    assert outcome.kind == "error", outcome
    assert outcome.payload["errorType"] == "ConfigError"
    assert "IMGPIPE_AUTH_MODE" in outcome.payload["errorMessage"]


def test_a_handler_the_image_does_not_have_is_an_init_error(
    engine: DockerEngine, images: dict[str, Built]
) -> None:
    # GIVEN a function whose ImageConfig.Command names a handler that is not in the image
    function = LambdaFunction(
        engine,
        images["processor"].ref,
        name="imgpipe-processor-wrong-handler",
        environment={"IMGPIPE_BUCKET": "imgpipe-bucket", "IMGPIPE_TABLE": "imgpipe-table"},
        command="processor.entrypoints.handler.no_such_handler",
    )
    # WHEN it starts, THEN the runtime reports an init error before it asks for any work
    with pytest.raises(AssertionError, match="init_error") as failed:
        function.start()
    function.stop()
    assert "no_such_handler" in str(failed.value)
