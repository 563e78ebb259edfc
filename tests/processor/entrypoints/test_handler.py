"""The Lambda handler with recorded events: batch responses, logs, metrics, settings.

moto in-process for S3 and DynamoDB, the fake engine for speed; the real engine runs in
test_pipeline_http.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import boto3
import pytest
from moto import mock_aws

from processor.core.errors import (
    AwsServiceError,
    ConfigError,
    SourceMissing,
    StaleEvent,
    TransientError,
)
from processor.core.keys import image_id
from processor.core.record import Status
from processor.entrypoints import bootstrap
from processor.entrypoints.handler import lambda_handler
from processor.entrypoints.settings import ProcessorSettings
from tests.aws import BUCKET, REGION, create_table
from tests.fakes.engine import FakeEngine
from tests.lambda_runtime import FakeLambdaContext, load_event
from tests.processor.aws.faults import S3_SLOW_DOWN, FailFirst, inject

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff not really a jpeg"


@pytest.fixture
def lambda_env(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        create_table(boto3.client("dynamodb", region_name=REGION))
        engine = FakeEngine()
        container = bootstrap.build(ProcessorSettings(), engine=engine, clocks=engine.clocks)
        bootstrap.reset(container)
        yield s3, container


def test_recorded_sqs_batch(lambda_env, capsys):
    # GIVEN the objects the recorded batch talks about
    s3, container = lambda_env
    s3.put_object(Bucket=BUCKET, Key="raw/deep/a/b/c/d/e/photo 1.jpg", Body=JPEG)
    s3.put_object(Bucket=BUCKET, Key="raw/already there+kept.png", Body=JPEG + b"png")
    event = load_event("sqs_s3_batch")
    # the recorded ETag is not these bytes': drop it, as moto's own events would carry the real one
    body = json.loads(event["Records"][0]["body"])
    del body["Records"][0]["s3"]["object"]["eTag"]
    event["Records"][0]["body"] = json.dumps(body)

    response = lambda_handler(event, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    for key in ("raw/deep/a/b/c/d/e/photo 1.jpg", "raw/already there+kept.png"):
        record = container.repo.get(image_id(BUCKET, key))
        assert record is not None and record.status is Status.done, key
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics = {m["Name"] for e in emf for d in e["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"ImagesDone", "ProcessingTime", "InputBytes", "OutputBytes"} <= metrics
    assert all(d["Namespace"] == "imgpipe" for e in emf for d in e["_aws"]["CloudWatchMetrics"])


def test_log_lines_carry_bucket_key_image_id_and_request_id(lambda_env, log_lines):
    s3, _ = lambda_env
    key = "raw/holiday 2024/café + friends.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=JPEG)
    event = load_event("s3_object_created_put")  # a direct S3 trigger, key URL-encoded
    del event["Records"][0]["s3"]["object"]["eTag"]
    context = FakeLambdaContext()

    lambda_handler(event, context)

    done = [line for line in log_lines() if line["message"] == "image done"]
    assert len(done) == 1
    line = done[0]
    assert line["bucket"] == BUCKET and line["key"] == key
    assert line["image_id"] == image_id(BUCKET, key)
    assert line["function_request_id"] == context.aws_request_id
    assert line["level"] == "INFO" and line["service"] == "processor"


def test_transient_failure_reports_only_that_message(lambda_env, capsys):
    s3, container = lambda_env
    s3.put_object(Bucket=BUCKET, Key="raw/a.jpg", Body=JPEG)
    s3.put_object(Bucket=BUCKET, Key="raw/b.jpg", Body=JPEG + b"b")
    event = load_event("sqs_s3_batch")
    template = event["Records"][2]
    records = []
    for n, key in enumerate(["raw/a.jpg", "raw/b.jpg"]):
        record = copy.deepcopy(template)
        record["messageId"] = f"m{n}"
        record["body"] = json.dumps({"type": "imgpipe.reprocess", "bucket": BUCKET, "key": key})
        records.append(record)
    # a.jpg's first read fails (by key: the two images may be in flight at once)
    fault = FailFirst(1, S3_SLOW_DOWN, only="/raw/a.jpg")
    inject(container.s3_client, "before-send.s3.GetObject", fault)

    response = lambda_handler({"Records": records}, FakeLambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert container.repo.get(image_id(BUCKET, "raw/b.jpg")).status is Status.done
    # nothing half-written: a.jpg is only seen (processing, no renditions), its try put back
    a = container.repo.get(image_id(BUCKET, "raw/a.jpg"))
    assert (a.status, a.renditions, a.tries) == (Status.processing, [], 0)
    assert '"RetriedErrors"' in capsys.readouterr().out
    # the redelivery succeeds
    response = lambda_handler({"Records": records[:1]}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert container.repo.get(image_id(BUCKET, "raw/a.jpg")).status is Status.done


def test_malformed_and_test_events_are_done_not_retried(lambda_env, log_lines):
    event = load_event("sqs_s3_batch")
    event["Records"][0]["body"] = "this is not an S3 event"
    event["Records"] = event["Records"][:2]  # garbage + s3:TestEvent
    assert lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert any(line["message"] == "malformed message dropped" for line in log_lines())


def test_bad_image_fails_the_record_with_a_metric(lambda_env, capsys):
    s3, container = lambda_env
    s3.put_object(Bucket=BUCKET, Key="raw/bad.jpg", Body=b"BAD bytes")
    event = load_event("sqs_s3_batch")
    event["Records"] = event["Records"][2:]
    event["Records"][0]["body"] = json.dumps(
        {"type": "imgpipe.reprocess", "bucket": BUCKET, "key": "raw/bad.jpg"}
    )
    assert lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    record = container.repo.get(image_id(BUCKET, "raw/bad.jpg"))
    assert record.status is Status.failed and record.error.code == "corrupt_image"
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"ImagesFailed"' in x]
    assert emf and emf[0]["error_code"] == "corrupt_image"


def test_direct_s3_event_raises_on_transient_errors(lambda_env):
    s3, container = lambda_env
    s3.put_object(Bucket=BUCKET, Key="raw/holiday 2024/café + friends.jpg", Body=JPEG)
    event = load_event("s3_object_created_put")
    del event["Records"][0]["s3"]["object"]["eTag"]
    inject(container.s3_client, "before-send.s3.GetObject", FailFirst(1, S3_SLOW_DOWN))
    with pytest.raises(Exception, match="SlowDown"):
        lambda_handler(event, FakeLambdaContext())  # Lambda's async retry takes it from here
    lambda_handler(event, FakeLambdaContext())
    record = container.repo.get(image_id(BUCKET, "raw/holiday 2024/café + friends.jpg"))
    assert record.status is Status.done


def test_missing_settings_fail_the_invocation_naming_the_variable(monkeypatch):
    monkeypatch.delenv("IMGPIPE_BUCKET")
    bootstrap.reset()
    with pytest.raises(ConfigError, match="IMGPIPE_BUCKET"):
        lambda_handler(load_event("sqs_s3_batch"), FakeLambdaContext())


class _Raising:
    """A service whose every event ends in ``error``: the handler's one retry decision."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def handle(self, event, **_kwargs):
        raise self.error

    def first_sight(self, event):
        raise self.error  # logged; the image's turn is what decides


def _reprocess_batch(*keys: str) -> dict:
    template = load_event("sqs_s3_batch")["Records"][2]
    records = []
    for n, key in enumerate(keys):
        record = copy.deepcopy(template)
        record["messageId"] = f"m{n}"
        record["body"] = json.dumps({"type": "imgpipe.reprocess", "bucket": BUCKET, "key": key})
        records.append(record)
    return {"Records": records}


@pytest.mark.parametrize(
    "error",
    [ConfigError("IMGPIPE_X is wrong"), StaleEvent("older"), SourceMissing("gone")],
    ids=lambda e: type(e).__name__,
)
def test_a_non_retryable_error_is_logged_counted_and_the_message_done(
    lambda_env, log_lines, capsys, error
):
    # GIVEN a service that fails with an error whose class says retrying cannot help
    _, container = lambda_env
    bootstrap.reset(dataclasses.replace(container, service=_Raising(error)))
    # WHEN a batch of one message arrives
    response = lambda_handler(_reprocess_batch("raw/a.jpg"), FakeLambdaContext())
    # THEN the message is done (no redelivery loop), with a log line and a metric
    assert response == {"batchItemFailures": []}
    dropped = [line for line in log_lines() if line["message"] == "dropped: retrying cannot help"]
    assert len(dropped) == 1 and dropped[0]["error_code"] == error.code
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"DroppedErrors"' in x]
    assert emf and emf[0]["error_code"] == error.code


@pytest.mark.parametrize(
    "error", [TransientError("slow down"), AwsServiceError("AccessDenied")], ids=str
)
def test_a_retryable_error_reports_the_message_failed(lambda_env, capsys, error):
    _, container = lambda_env
    bootstrap.reset(dataclasses.replace(container, service=_Raising(error)))
    response = lambda_handler(_reprocess_batch("raw/a.jpg", "raw/b.jpg"), FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert '"RetriedErrors"' in capsys.readouterr().out


def test_a_malformed_direct_invocation_is_dropped_not_retried(lambda_env, log_lines):
    # A direct S3 trigger is retried by Lambda when the handler raises: garbage must not be.
    response = lambda_handler({"Records": [{"eventSource": "aws:s3"}]}, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert any(line["message"] == "malformed message dropped" for line in log_lines())


# --- batches that never fail together (processor/rules/pacing.py) -----------------------------


def test_what_cannot_finish_in_the_invocation_comes_back_untouched(lambda_env) -> None:
    # GIVEN three uploads, and an invocation with 35 s left: less than 30 s + 10 s
    s3, container = lambda_env
    engine = container.engine
    for name in ("a", "b", "c"):
        s3.put_object(Bucket=BUCKET, Key=f"raw/{name}.jpg", Body=JPEG + name.encode())
    # WHEN the batch arrives
    response = lambda_handler(
        _reprocess_batch("raw/a.jpg", "raw/b.jpg", "raw/c.jpg"),
        FakeLambdaContext(timeout_ms=35_000),
    )
    # THEN the first image ran, with the 25 s that were left for it ...
    assert engine.budgets == [25.0]
    assert container.repo.get(image_id(BUCKET, "raw/a.jpg")).status is Status.done
    # ... and the other two were not started: reported, to come back in a new invocation
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert container.repo.get(image_id(BUCKET, "raw/b.jpg")) is None


def test_with_time_enough_every_image_gets_the_configured_budget(lambda_env) -> None:
    s3, container = lambda_env
    engine = container.engine
    for name in ("a", "b"):
        s3.put_object(Bucket=BUCKET, Key=f"raw/{name}.jpg", Body=JPEG + name.encode())
    response = lambda_handler(_reprocess_batch("raw/a.jpg", "raw/b.jpg"), FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert engine.budgets == [30.0, 30.0]


def test_a_message_put_off_before_goes_first(lambda_env) -> None:
    s3, container = lambda_env
    engine = container.engine
    for name in ("a", "b"):
        s3.put_object(Bucket=BUCKET, Key=f"raw/{name}.jpg", Body=JPEG + name.encode())
    event = _reprocess_batch("raw/a.jpg", "raw/b.jpg")
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "1"
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "2"
    response = lambda_handler(event, FakeLambdaContext(timeout_ms=35_000))
    assert engine.processed == [image_id(BUCKET, "raw/b.jpg")]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_an_image_over_its_budget_is_failed_with_timeout_and_never_retried(
    lambda_env, capsys
) -> None:
    # GIVEN an image the engine stops at its time budget, next to a good one
    s3, container = lambda_env
    s3.put_object(Bucket=BUCKET, Key="raw/slow.png", Body=b"SLOW pixels")
    s3.put_object(Bucket=BUCKET, Key="raw/good.jpg", Body=JPEG)
    response = lambda_handler(_reprocess_batch("raw/slow.png", "raw/good.jpg"), FakeLambdaContext())
    # THEN the batch succeeds: the slow one is failed with `timeout` (no redelivery loop,
    # no dead-letter queue), the good one done, and the timeout counted for its alarm
    assert response == {"batchItemFailures": []}
    slow = container.repo.get(image_id(BUCKET, "raw/slow.png"))
    assert slow.status is Status.failed and slow.error.code == "timeout"
    assert container.repo.get(image_id(BUCKET, "raw/good.jpg")).status is Status.done
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "ImagesTimedOut" in x]
    assert emf and emf[0]["ImagesTimedOut"] == [1.0]


def test_an_image_refused_for_its_cost_is_counted_over_limit(lambda_env, capsys) -> None:
    s3, container = lambda_env
    s3.put_object(Bucket=BUCKET, Key="raw/huge.gif", Body=b"HUGE header")
    assert lambda_handler(_reprocess_batch("raw/huge.gif"), FakeLambdaContext()) == {
        "batchItemFailures": []
    }
    record = container.repo.get(image_id(BUCKET, "raw/huge.gif"))
    assert record.status is Status.failed and record.error.code == "too_many_pixels"
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "ImagesOverLimit" in x]
    assert emf and emf[0]["error_code"] == "too_many_pixels"
