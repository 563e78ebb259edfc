"""The whole path over real HTTP: moto's ThreadedMotoServer on 127.0.0.1, S3 -> SQS
notifications configured in moto (so the events are moto's own), the real engine, and
``lambda_handler`` fed Lambda-shaped SQS batches by a stand-in for the event source mapping.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import pyvips
from moto.server import ThreadedMotoServer

from cli.main import main as cli_main
from processor.core.keys import image_id
from processor.core.ports import IMMUTABLE
from processor.core.record import ImageRecord, Status
from processor.entrypoints import bootstrap
from processor.entrypoints.handler import lambda_handler
from processor.entrypoints.settings import ProcessorSettings
from processor.imaging.engine import Engine
from processor.service.images import Action, Outcome
from tests.aws import BUCKET, REGION, TABLE, create_table
from tests.conftest import BAD, BAD_CODES, GOOD
from tests.lambda_runtime import drain
from tests.processor.aws.faults import (
    CONNECTION_DROPPED,
    DYNAMO_THROTTLED,
    S3_INTERNAL,
    S3_SLOW_DOWN,
    FailFirst,
    inject,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("processor_moto_server")]

MAX_RECEIVE = 4  # the test queue's redrive policy


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(ProcessorSettings(bucket=BUCKET, table=TABLE).engine_config)


class CountingService:
    """Wraps the real service to record every outcome (what the assertions count)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.outcomes: list[Outcome] = []

    def handle(self, event: Any, **kwargs: Any) -> Outcome:
        outcome: Outcome = self.inner.handle(event, **kwargs)
        self.outcomes.append(outcome)
        return outcome

    def __getattr__(self, name: str) -> Any:  # take_up, put_back: the service's own
        return getattr(self.inner, name)

    def done_per_image(self) -> Counter[str]:
        return Counter(o.image_id for o in self.outcomes if o.action is Action.done)


@dataclass
class Stack:
    endpoint: str
    s3: Any
    sqs: Any
    dynamodb: Any
    queue_url: str
    dlq_url: str
    service: CountingService
    container: bootstrap.Container

    def upload(self, key: str, data: bytes | Path) -> None:
        body = data.read_bytes() if isinstance(data, Path) else data
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def drain(self) -> Any:
        return drain(self.sqs, self.queue_url, lambda_handler)

    def record(self, key: str) -> ImageRecord:
        found = self.container.repo.get(image_id(BUCKET, key))
        assert found is not None, f"no record for {key}"
        return found

    def public_keys(self) -> list[str]:
        return sorted(self.container.store.list_keys(BUCKET, "public/"))

    def dlq_bodies(self) -> list[str]:
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
        return [m["Body"] for m in got.get("Messages", [])]

    def rebuild(self, engine: Engine) -> None:
        """A new container from the (changed) environment, as a new Lambda version would."""
        container = bootstrap.build(ProcessorSettings(), engine=engine)
        self.service = CountingService(container.service)
        self.container = dataclasses.replace(container, service=self.service)
        bootstrap.reset(self.container)


@pytest.fixture
def stack(endpoint, engine, monkeypatch) -> Stack:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    monkeypatch.setenv("IMGPIPE_ENDPOINT_URL", endpoint)
    clients = {
        name: boto3.client(name, region_name=REGION, endpoint_url=endpoint)
        for name in ("s3", "sqs", "dynamodb")
    }
    s3, sqs = clients["s3"], clients["sqs"]
    s3.create_bucket(Bucket=BUCKET)
    create_table(clients["dynamodb"])
    dlq_url = sqs.create_queue(QueueName="imgpipe-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    queue_url = sqs.create_queue(
        QueueName="imgpipe-processing",
        Attributes={
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
                    "maxReceiveCount": str(MAX_RECEIVE),
                }
            )
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    # The production wiring: only raw/ notifies, so outputs under public/ never loop back.
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "imgpipe-raw-uploads",
                    "QueueArn": queue_arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}},
                }
            ]
        },
    )
    monkeypatch.setenv("IMGPIPE_QUEUE_URL", queue_url)
    monkeypatch.setenv("IMGPIPE_DLQ_URL", dlq_url)
    result = Stack(endpoint, s3, sqs, clients["dynamodb"], queue_url, dlq_url, None, None)
    result.rebuild(engine)
    return result


def assert_renditions_match(stack: Stack, record: ImageRecord) -> None:
    """Every listed rendition is stored, decodes, and has the listed size and headers."""
    assert record.renditions
    for r in record.renditions:
        got = stack.s3.get_object(Bucket=BUCKET, Key="public/" + r.key)
        assert got["ContentType"] == r.content_type
        assert got["CacheControl"] == IMMUTABLE
        data = got["Body"].read()
        assert len(data) == r.bytes
        image = pyvips.Image.new_from_buffer(data, "")
        assert (image.width, image.height) == (r.width, r.height)


KEYS = {
    "raw/plain.jpg": GOOD / "Landscape_1.jpg",
    "raw/with space/and+plus.png": GOOD / "with-alpha.png",
    "raw/ünïcödé/日本語 ファイル.webp": GOOD / "4.webp",
    "raw/a/b/c/d/e/f/g/deep.gif": GOOD / "grey-plus-alpha.gif",
}


def test_real_notifications_to_done_records(stack):
    # GIVEN uploads under raw/ with awkward keys, and one outside it
    for key, path in KEYS.items():
        stack.upload(key, path)
    stack.upload("elsewhere/not-an-upload.jpg", GOOD / "320x240.jpg")

    # WHEN the queue is drained through the handler (moto's s3:TestEvent included)
    report = stack.drain()

    # THEN every upload is done, once, with decodable renditions and nothing else stored
    assert report.failures == 0
    assert report.messages == len(KEYS) + 1  # + moto's s3:TestEvent, ignored
    assert set(stack.service.done_per_image().values()) == {1}
    listed = []
    for key in KEYS:
        record = stack.record(key)
        assert record.status is Status.done and record.source_key == key
        assert record.facts is not None and record.content_version
        assert_renditions_match(stack, record)
        listed += ["public/" + r.key for r in record.renditions]
    assert stack.public_keys() == sorted(listed)
    assert len(stack.service.outcomes) == len(KEYS)  # the key outside raw/ never notified
    page = stack.container.repo.list_images(status=Status.done)
    assert {r.source_key for r in page.items} == set(KEYS)


def test_overwrite_delete_zero_bytes_and_vanished(stack):
    stack.upload("raw/cat.jpg", GOOD / "Landscape_1.jpg")
    stack.drain()
    first = stack.record("raw/cat.jpg")

    # overwrite: new content version, old renditions removed
    stack.upload("raw/cat.jpg", GOOD / "flowers.jpeg")
    stack.drain()
    second = stack.record("raw/cat.jpg")
    assert second.content_version != first.content_version
    assert second.created_at == first.created_at
    assert second.facts is not None and (second.facts.width, second.facts.height) == (1920, 1080)
    assert stack.public_keys() == sorted("public/" + r.key for r in second.renditions)

    # delete: renditions gone, record marked deleted
    stack.s3.delete_object(Bucket=BUCKET, Key="raw/cat.jpg")
    stack.drain()
    assert stack.record("raw/cat.jpg").status is Status.deleted
    assert stack.public_keys() == []

    # a zero-byte object fails as empty_image, and is not retried
    stack.upload("raw/empty.jpg", b"")
    report = stack.drain()
    empty = stack.record("raw/empty.jpg")
    assert (empty.status, empty.error.code if empty.error else None) == (
        Status.failed,
        "empty_image",
    )
    assert report.failures == 0

    # vanished before processing: upload and delete, then process both events
    stack.upload("raw/ghost.jpg", GOOD / "320x240.jpg")
    stack.s3.delete_object(Bucket=BUCKET, Key="raw/ghost.jpg")
    report = stack.drain()
    assert report.failures == 0
    reasons = [o.reason for o in stack.service.outcomes[-2:]]
    assert reasons[0] in {"source_missing", "superseded"}
    assert stack.record("raw/ghost.jpg").status is Status.deleted
    assert stack.public_keys() == []
    assert stack.dlq_bodies() == []


def _take_messages(stack: Stack) -> list[dict[str, Any]]:
    got = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)
    messages = got.get("Messages", [])
    for m in messages:
        stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages if "Records" in json.loads(m["Body"])]


def _with_sequencer(body: dict[str, Any], sequencer: str) -> str:
    body = json.loads(json.dumps(body))
    body["Records"][0]["s3"]["object"]["sequencer"] = sequencer
    return json.dumps(body)


def test_duplicated_and_reordered_deliveries(stack):
    # GIVEN moto's own events for two uploads and a delete of one key, given sequencers as S3 would
    stack.upload("raw/dog.jpg", GOOD / "Landscape_1.jpg")
    (put1,) = _take_messages(stack)
    stack.upload("raw/dog.jpg", GOOD / "Landscape_2.jpg")
    (put2,) = _take_messages(stack)
    v1 = _with_sequencer(put1, "0055AED6DCD90281E5")
    v2 = _with_sequencer(put2, "0055AED6DCD90281E6")

    # WHEN they arrive newest first, each twice, and two duplicates in one batch
    for body in (v2, v2, v1, v2, v1):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    report = stack.drain()

    # THEN one record with the newest bytes and exactly its renditions
    assert report.failures == 0
    record = stack.record("raw/dog.jpg")
    assert record.status is Status.done
    assert record.sequencer is not None and record.sequencer.startswith("0055AED6DCD90281E6")
    wanted = (GOOD / "Landscape_2.jpg").stat().st_size
    assert record.facts is not None and record.facts.input_bytes == wanted
    assert stack.public_keys() == sorted("public/" + r.key for r in record.renditions)
    assert stack.service.done_per_image()[record.id] == 1
    assert {o.reason for o in stack.service.outcomes if o.action is Action.skipped} <= {
        "duplicate",
        "stale",
        "superseded",
    }

    # AND a delete that carries an older sequencer than the last upload is dropped
    stack.s3.delete_object(Bucket=BUCKET, Key="raw/dog.jpg")
    (delete,) = _take_messages(stack)
    stack.sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody=_with_sequencer(delete, "0055AED6DCD90281E0")
    )
    stack.drain()
    assert stack.record("raw/dog.jpg").status is Status.done
    # while the delete's real order applies
    stack.sqs.send_message(
        QueueUrl=stack.queue_url, MessageBody=_with_sequencer(delete, "0055AED6DCD90281F0")
    )
    stack.drain()
    assert stack.record("raw/dog.jpg").status is Status.deleted
    assert stack.public_keys() == []


def test_transient_faults_are_retried_until_every_image_is_done_once(stack, monkeypatch, engine):
    # GIVEN botocore retrying once, and the first calls of several kinds failing
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    stack.rebuild(engine)
    s3, dynamodb = stack.container.s3_client, stack.container.dynamodb_client
    faults = [
        inject(s3, "before-send.s3.GetObject", FailFirst(3, S3_SLOW_DOWN)),
        inject(s3, "before-send.s3.PutObject", FailFirst(3, S3_INTERNAL)),
        inject(dynamodb, "before-send.dynamodb.PutItem", FailFirst(5, DYNAMO_THROTTLED)),
        inject(dynamodb, "before-send.dynamodb.GetItem", FailFirst(2, CONNECTION_DROPPED)),
    ]
    sources = sorted(GOOD.glob("Landscape_*.jpg"))[:5] + [GOOD / "with-alpha.png"]
    keys = [f"raw/faulty/{n} {p.name}" for n, p in enumerate(sources)]
    for key, path in zip(keys, sources, strict=True):
        stack.upload(key, path)

    report = stack.drain()

    # THEN the faults were hit and surfaced to the queue at least once...
    assert all(f.remaining == 0 and f.injected > 0 for f in faults)
    assert report.failures >= 1
    # ...and every image is done exactly once, with exactly its renditions stored
    done = stack.service.done_per_image()
    listed = []
    for key in keys:
        record = stack.record(key)
        assert record.status is Status.done, (key, record.status)
        assert done[record.id] == 1
        listed += ["public/" + r.key for r in record.renditions]
    assert stack.public_keys() == sorted(listed)
    assert stack.dlq_bodies() == []


def test_dead_letter_then_redrive(stack, capsys, monkeypatch, engine):
    # GIVEN a message that fails more often than the queue's maxReceiveCount
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    stack.rebuild(engine)
    stack.upload("raw/stuck.jpg", GOOD / "320x240.jpg")
    fault = inject(
        stack.container.s3_client, "before-send.s3.GetObject", FailFirst(10**6, S3_SLOW_DOWN)
    )
    report = stack.drain()
    assert report.failures == MAX_RECEIVE
    record = stack.container.repo.get(image_id(BUCKET, "raw/stuck.jpg"))
    assert record is None or record.status is not Status.done  # nothing marked done
    # the message is now in the dead-letter queue (check without consuming it)
    attrs = stack.sqs.get_queue_attributes(
        QueueUrl=stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"

    # WHEN the cause is fixed and `imgpipe redrive` moves it back
    fault.remaining = 0
    assert cli_main(["redrive"]) == 0
    assert "moved 1 messages" in capsys.readouterr().err
    stack.drain()

    # THEN the image is done and both queues are empty
    assert stack.record("raw/stuck.jpg").status is Status.done
    assert stack.dlq_bodies() == []


def test_reprocess_command_rederives_old_config_versions(stack, monkeypatch, engine, capsys):
    stack.upload("raw/one.jpg", GOOD / "Landscape_1.jpg")
    stack.upload("raw/two.png", GOOD / "with-alpha.png")
    stack.drain()
    old = {k: stack.record(k) for k in ("raw/one.jpg", "raw/two.png")}

    # nothing differs from the current config: nothing to queue
    assert cli_main(["reprocess"]) == 0
    assert "queued 0 images" in capsys.readouterr().err

    # WHEN the rendition config changes (a new deployment) and reprocess runs
    renditions = [{"name": "thumb", "folder": "thumbs", "width": 160, "height": 160}]
    monkeypatch.setenv("IMGPIPE_RENDITIONS", json.dumps(renditions))
    assert cli_main(["reprocess", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert sorted(line.split("\t")[0] for line in out.out.splitlines()) == sorted(
        r.id for r in old.values()
    )
    assert cli_main(["reprocess"]) == 0
    assert "queued 2 images" in capsys.readouterr().err
    new_engine = Engine(ProcessorSettings().engine_config)
    stack.rebuild(new_engine)
    stack.drain()

    # THEN both records carry the new version, and only the new renditions remain
    version = ProcessorSettings().engine_config.version
    listed = []
    for key, before in old.items():
        after = stack.record(key)
        assert after.config_version == version != before.config_version
        assert after.created_at == before.created_at
        assert [r.name for r in after.renditions] == ["thumb", "thumb"]
        assert max(r.width for r in after.renditions) <= 160
        listed += ["public/" + r.key for r in after.renditions]
    assert stack.public_keys() == sorted(listed)

    # --ids and --all queue what they name
    assert cli_main(["reprocess", "--ids", old["raw/one.jpg"].id, "nope"]) == 1
    assert "nope: no such image" in capsys.readouterr().err
    assert cli_main(["reprocess", "--all"]) == 0
    assert "queued 2 images" in capsys.readouterr().err
    stack.drain()
    assert stack.dlq_bodies() == []


def test_an_image_too_costly_for_the_function_is_derived_after_it_grows(
    stack, monkeypatch, capsys, tmp_path
):
    # GIVEN a 512 MB function (256 MB per image) and a 49 MP GIF, decoded whole (~310 MB)
    from PIL import Image

    gif = tmp_path / "wide.gif"
    Image.new("P", (7000, 7000)).save(gif)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    stack.rebuild(Engine(ProcessorSettings().engine_config))
    stack.upload("raw/wide.gif", gif)
    stack.drain()
    refused = stack.record("raw/wide.gif")
    assert refused.status is Status.failed and refused.error is not None, refused
    assert refused.error.code == "too_costly"
    assert refused.error.message.endswith("this function allows 256 MB per image")
    assert stack.dlq_bodies() == []  # refused once, not retried

    # WHEN the function gets more memory (a new deployment): the config version does not
    # change with the limits, so a plain reprocess finds nothing, and --ids names the image
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
    assert cli_main(["reprocess"]) == 0
    assert "queued 0 images" in capsys.readouterr().err
    assert cli_main(["reprocess", "--ids", refused.id]) == 0
    assert "queued 1 images" in capsys.readouterr().err
    stack.rebuild(Engine(ProcessorSettings().engine_config))
    stack.drain()

    # THEN it is done, with its renditions
    after = stack.record("raw/wide.gif")
    assert after.status is Status.done and after.error is None
    assert max(r.width for r in after.renditions) == 2048
    assert stack.dlq_bodies() == []


def test_content_dedupe_over_http(stack):
    stack.upload("raw/original.jpg", GOOD / "flowers.jpeg")
    stack.drain()
    stack.upload("raw/same bytes again.jpg", GOOD / "flowers.jpeg")
    stack.drain()
    second = stack.service.outcomes[-1]
    assert (second.action, second.reason) == (Action.done, "reused")
    a, b = stack.record("raw/original.jpg"), stack.record("raw/same bytes again.jpg")
    assert second.reused_from == a.id and a.facts == b.facts
    assert_renditions_match(stack, b)


@pytest.mark.slow
def test_every_corpus_file_through_the_whole_path(stack):
    # GIVEN every file of ../shared/corpus uploaded under raw/
    expected: dict[str, str | None] = {}
    for path in sorted(GOOD.iterdir()):
        expected[f"raw/corpus/good/{path.name}"] = None
        stack.upload(f"raw/corpus/good/{path.name}", path)
    for path in sorted(BAD.iterdir()):
        expected[f"raw/corpus/bad/{path.name}"] = BAD_CODES[path.name]
        stack.upload(f"raw/corpus/bad/{path.name}", path)

    report = stack.drain()

    # THEN good files are done, bad ones failed with the corpus README's codes, none retried
    assert report.failures == 0
    for key, code in expected.items():
        record = stack.record(key)
        if code is None:
            assert record.status is Status.done, (key, record.error)
            assert record.renditions and record.facts is not None
        else:
            assert record.status is Status.failed, key
            assert record.error is not None and record.error.code == code, (key, record.error)
            assert record.renditions == []
    listed = ["public/" + r.key for key in expected for r in stack.record(key).renditions]
    assert stack.public_keys() == sorted(listed)
    assert stack.dlq_bodies() == []


def _as_s3_sends_it(body: dict[str, Any], name: str, version_id: str, sequencer: str) -> str:
    """moto's event reshaped as S3's: moto sends no versionId or sequencer on deletes."""
    body = json.loads(json.dumps(body))
    record = body["Records"][0]
    record["eventName"] = name
    record["s3"]["object"].update(versionId=version_id, sequencer=sequencer)
    return json.dumps(body)


def test_one_delete_in_a_versioned_bucket_is_one_tombstone_and_counted_once(stack):
    # GIVEN a done image in a versioned bucket, as the stack's bucket is
    stack.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    stack.upload("raw/bird.jpg", GOOD / "Landscape_3.jpg")
    stack.drain()
    assert stack.record("raw/bird.jpg").status is Status.done
    (original,) = stack.s3.list_object_versions(Bucket=BUCKET, Prefix="raw/bird.jpg")["Versions"]

    # WHEN it is deleted (a delete marker), as S3 reports it
    stack.s3.delete_object(Bucket=BUCKET, Key="raw/bird.jpg")
    (marker,) = stack.s3.list_object_versions(Bucket=BUCKET, Prefix="raw/bird.jpg")["DeleteMarkers"]
    assert _take_messages(stack) == []  # moto sends nothing for a delete marker; S3 does
    delete = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectRemoved:DeleteMarkerCreated",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": "raw/bird.jpg"}},
            }
        ]
    }
    stack.sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=_as_s3_sends_it(
            delete, "ObjectRemoved:DeleteMarkerCreated", marker["VersionId"], "0055AED6DCD9028200"
        ),
    )
    stack.drain()
    tombstone = stack.record("raw/bird.jpg")
    assert tombstone.status is Status.deleted
    # erasing removed both versions of the original: nothing comes back in raw/
    listed = stack.s3.list_object_versions(Bucket=BUCKET, Prefix="raw/bird.jpg")
    assert not listed.get("Versions") and not listed.get("DeleteMarkers")
    _take_messages(stack)  # moto's own echo (one, without the version ids S3 sends)

    # AND S3's two echoes of the erase arrive: the original version, then the marker
    for version, sequencer in ((original, "0055AED6DCD9028210"), (marker, "0055AED6DCD9028220")):
        stack.sqs.send_message(
            QueueUrl=stack.queue_url,
            MessageBody=_as_s3_sends_it(
                delete, "ObjectRemoved:Delete", version["VersionId"], sequencer
            ),
        )
    report = stack.drain()

    # THEN one tombstone, written once, and one deleted image in the counts
    assert report.failures == 0
    assert stack.record("raw/bird.jpg") == tombstone
    deleted = [o for o in stack.service.outcomes if o.action is Action.deleted]
    assert len(deleted) == 1
    echoes = [o for o in stack.service.outcomes if o.reason == "purged"]
    assert len(echoes) == 2
