"""The boto3 adapters against moto (in-process ``mock_aws``): behaviour and error translation."""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from processor.aws.dynamo import DynamoImageRepository
from processor.aws.errors import AwsServiceError, translate
from processor.aws.s3 import S3ObjectStore, _TranslatingBody
from processor.core.errors import ConcurrentWrite, SourceMissing, StaleEvent, TransientError
from processor.core.events import normalize_sequencer
from processor.core.keys import DEFAULT_SHARDS, shard_of
from processor.core.ports import IMMUTABLE
from processor.core.record import (
    Change,
    ErrorInfo,
    ImageFacts,
    ImageRecord,
    RenditionInfo,
    Status,
)
from tests.aws import BUCKET, REGION, TABLE, create_table
from tests.processor.aws.faults import (
    CONNECTION_DROPPED,
    DYNAMO_INTERNAL,
    DYNAMO_THROTTLED,
    S3_INTERNAL,
    S3_SLOW_DOWN,
    FailFirst,
    inject,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no botocore retry: each fault surfaces
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb)
        yield s3, dynamodb


@pytest.fixture
def store(aws):
    return S3ObjectStore(aws[0])


@pytest.fixture
def repo(aws):
    return DynamoImageRepository(aws[1], TABLE)


# --- S3 ----------------------------------------------------------------------------------


def test_open_streams_the_object(store, aws):
    aws[0].put_object(Bucket=BUCKET, Key="raw/ü b+c.jpg", Body=b"x" * 3_000_000)
    with store.open(BUCKET, "raw/ü b+c.jpg") as source:
        assert source.size == 3_000_000 and source.etag
        chunks = []
        while chunk := source.stream.read(1024 * 1024):
            chunks.append(chunk)
    assert sum(map(len, chunks)) == 3_000_000 and len(chunks) >= 3


def test_open_with_the_events_etag(store, aws):
    etag = aws[0].put_object(Bucket=BUCKET, Key="raw/a.jpg", Body=b"one")["ETag"].strip('"')
    with store.open(BUCKET, "raw/a.jpg", etag=etag) as source:
        assert source.stream.read() == b"one"
    aws[0].put_object(Bucket=BUCKET, Key="raw/a.jpg", Body=b"two")
    with pytest.raises(StaleEvent), store.open(BUCKET, "raw/a.jpg", etag=etag):
        pass


def test_missing_object_is_source_missing(store):
    with pytest.raises(SourceMissing), store.open(BUCKET, "raw/nope.jpg"):
        pass
    assert store.exists(BUCKET, "raw/nope.jpg") is False


def test_put_copy_delete(store, aws):
    store.put(
        BUCKET, "public/t/a.webp", b"webp", content_type="image/webp", cache_control=IMMUTABLE
    )
    head = aws[0].head_object(Bucket=BUCKET, Key="public/t/a.webp")
    assert head["ContentType"] == "image/webp" and head["CacheControl"] == IMMUTABLE
    store.copy(
        BUCKET,
        "public/t/a.webp",
        "public/t/b.webp",
        content_type="image/webp",
        cache_control=IMMUTABLE,
    )
    head = aws[0].head_object(Bucket=BUCKET, Key="public/t/b.webp")
    assert head["ContentType"] == "image/webp" and head["CacheControl"] == IMMUTABLE
    with pytest.raises(SourceMissing):
        store.copy(
            BUCKET, "public/t/zz.webp", "public/t/c.webp", content_type="x", cache_control="y"
        )
    store.delete(BUCKET, ["public/t/a.webp", "public/t/b.webp", "public/t/never.webp"])
    assert store.list_keys(BUCKET, "public/") == []


@pytest.mark.parametrize("fault", [S3_SLOW_DOWN, S3_INTERNAL, CONNECTION_DROPPED])
def test_s3_faults_become_transient(store, aws, fault):
    aws[0].put_object(Bucket=BUCKET, Key="raw/a.jpg", Body=b"one")
    hook = inject(aws[0], "before-send.s3", FailFirst(2, fault))
    with pytest.raises(TransientError), store.open(BUCKET, "raw/a.jpg"):
        pass
    with pytest.raises(TransientError):
        store.put(BUCKET, "public/x", b"", content_type="a/b", cache_control=IMMUTABLE)
    assert hook.injected == 2
    with store.open(BUCKET, "raw/a.jpg") as source:  # the fault has passed
        assert source.stream.read() == b"one"


def test_a_stream_cut_short_is_transient():
    class Body:
        def read(self, n):
            raise ReadTimeoutError(endpoint_url="http://s3")

    stream = io.BufferedReader(_TranslatingBody(Body(), "reading"))
    with pytest.raises(TransientError):
        stream.read(10)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, SourceMissing),
        ("404", 404, SourceMissing),
        ("PreconditionFailed", 412, StaleEvent),
        ("ConditionalCheckFailedException", 400, StaleEvent),
        ("ThrottlingException", 400, TransientError),
        ("ProvisionedThroughputExceededException", 400, TransientError),
        ("SlowDown", 503, TransientError),
        ("InternalError", 500, TransientError),
        ("AccessDenied", 403, AwsServiceError),
        ("ResourceNotFoundException", 400, AwsServiceError),
    ],
)
def test_error_translation(code, status, expected):
    error = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )
    translated = translate(error, "doing it")
    assert type(translated) is expected
    assert "doing it" in translated.message
    # only the retryable ones keep the message on the queue
    assert translated.retryable == (expected in (TransientError, AwsServiceError))


# --- DynamoDB ------------------------------------------------------------------------------


def _record(
    iid: str,
    created: str,
    status: Status = Status.done,
    seq: str | None = None,
    sha: str = "ab" * 32,
) -> ImageRecord:
    return ImageRecord(
        id=iid,
        source_key=f"raw/{iid}.jpg",
        bucket=BUCKET,
        status=status,
        created_at=created,
        updated_at=created,
        sequencer=normalize_sequencer(seq),
        config_version="cfg",
        content_version="v1",
        facts=ImageFacts(sha256=sha, input_bytes=10, format="jpeg", width=4, height=3),
        renditions=[
            RenditionInfo(
                name="thumb",
                key=f"thumbs/{iid}-v1.jpg",
                format="jpeg",
                content_type="image/jpeg",
                width=4,
                height=3,
                bytes=10,
            )
        ],
        processing_ms=12.5,
        error=ErrorInfo(code="x", message="y") if status is Status.failed else None,
    )


def test_begin_creates_once_and_keeps_created_at(repo, aws):
    first = repo.begin(
        image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2024-01-01T00:00:00.000000Z"
    )
    again = repo.begin(
        image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2030-01-01T00:00:00.000000Z"
    )
    assert first.status is Status.processing
    assert again.created_at == first.created_at == "2024-01-01T00:00:00.000000Z"
    item = aws[1].get_item(TableName=TABLE, Key={"id": {"S": "i1"}})["Item"]
    assert item["list_pk"] == {"S": f"image#{shard_of('i1', DEFAULT_SHARDS)}"}
    assert item["sort_key"] == {"S": "2024-01-01T00:00:00.000000Z#i1"}
    assert item["status"] == {"S": "processing"}
    assert "sha256" not in item  # not known yet: no empty index key


def test_take_up_counts_tries_on_a_processing_record_only(repo, aws):
    first = repo.take_up(
        image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2024-01-01T00:00:00.000000Z"
    )
    again = repo.take_up(
        image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2030-01-01T00:00:00.000000Z"
    )
    counted = repo.take_up(
        image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2031", exists=True
    )
    assert (first.status, first.tries) == (Status.processing, 1)
    assert (again.tries, again.created_at, again.updated_at) == (
        2,  # the create lost to the record there: the try is counted on it
        "2024-01-01T00:00:00.000000Z",  # first sight's, as begin keeps it
        "2024-01-01T00:00:00.000000Z",
    )
    assert counted.tries == 3
    item = aws[1].get_item(TableName=TABLE, Key={"id": {"S": "i1"}})["Item"]
    assert item["state_pk"] == {"S": f"processing#{shard_of('i1', DEFAULT_SHARDS)}"}
    assert item["sort_key"] == {"S": "2024-01-01T00:00:00.000000Z#i1"}
    assert item["tries"] == {"N": "3"}
    # a listing leaves tries out: counting a try writes no index entry
    (listed,) = repo.list_images(status=Status.processing).items
    assert listed.id == "i1" and listed.tries is None
    # tries put back: never below none
    for _ in range(4):
        repo.put_back("i1")
    assert repo.get("i1").tries == 0
    # a record past processing is not taken up, nor put back
    version = repo.get("i1").version + 1  # each saved state has a newer version
    done = _record("i1", "2024-01-01T00:00:00.000000Z").model_copy(
        update={"tries": 1, "version": version}
    )
    repo.save(done)
    assert repo.take_up(image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="x") is None
    repo.put_back("i1")
    assert repo.get("i1") == done


def test_begin_after_take_up_keeps_the_try(repo):
    repo.take_up(image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2024")
    assert repo.begin(image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2030").tries == 1


@pytest.mark.parametrize(("operation", "exists"), [("PutItem", False), ("UpdateItem", True)])
def test_take_up_throttled_is_transient(repo, aws, operation, exists):
    if exists:
        repo.begin(image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2024")
    inject(aws[1], f"before-send.dynamodb.{operation}", FailFirst(1, DYNAMO_THROTTLED))
    with pytest.raises(TransientError):
        repo.take_up(
            image_id="i1", bucket=BUCKET, source_key="raw/i1.jpg", now="2024", exists=exists
        )


def test_send_later_delays_the_message_and_carries_its_attributes(aws):
    from processor.aws.sqs import SqsQueue

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue = SqsQueue(sqs, url)
    queue.send_later("later", delay_s=900, attributes={"imgpipe-tries": "1"})
    queue.send_later("now", delay_s=0, attributes={"imgpipe-tries": "2"})
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    (message,) = got["Messages"]  # the delayed one is not visible yet
    assert message["Body"] == "now"
    assert message["MessageAttributes"]["imgpipe-tries"] == {
        "StringValue": "2",
        "DataType": "String",
    }


def test_save_round_trip_and_index_attributes(repo, aws):
    record = _record("i1", "2024-01-01T00:00:00.000000Z", seq="0A")
    assert repo.save(record) is None
    assert repo.get("i1") == record
    item = aws[1].get_item(TableName=TABLE, Key={"id": {"S": "i1"}})["Item"]
    assert item["sha256"] == {"S": "ab" * 32}
    assert item["status"] == {"S": "done"}
    assert item["list_pk"] == {"S": f"image#{shard_of('i1', DEFAULT_SHARDS)}"}
    assert item["sort_key"] == {"S": "2024-01-01T00:00:00.000000Z#i1"}


def test_save_is_conditional_on_the_sequencer_and_the_version(repo):
    created = "2024-01-01T00:00:00.000000Z"

    def state(version: int, status: Status = Status.done, seq: str | None = None) -> ImageRecord:
        return _record("i1", created, status, seq=seq).model_copy(update={"version": version})

    repo.save(state(1, seq="0055AED6DCD90281F0"))
    # an older sequencer (shorter, right-padded) loses
    with pytest.raises(StaleEvent):
        repo.save(state(2, Status.failed, seq="0055AED6DCD90281E"))
    # no sequencer at all against a stored one loses too
    with pytest.raises(StaleEvent):
        repo.save(state(2, Status.failed))
    # the same one (a duplicate) and a newer one win, and return what they replaced
    replaced = repo.save(state(2, seq="0055AED6DCD90281F0"))
    assert replaced is not None and replaced.sequencer == normalize_sequencer("0055AED6DCD90281F0")
    # ... but never with a version already stored: another write of the image came first
    with pytest.raises(ConcurrentWrite):
        repo.save(state(2, Status.deleted, seq="0055AED6DCD902820"))
    replaced = repo.save(state(3, Status.deleted, seq="0055AED6DCD902820"))
    assert replaced is not None and replaced.status is Status.done and replaced.version == 2
    current = repo.get("i1")
    assert current is not None and current.status is Status.deleted and current.version == 3


def test_an_event_marked_pending_is_settled_only_at_its_version(repo):
    created = "2024-01-01T00:00:00.000000Z"
    pending = _record("i9", created).model_copy(
        update={"version": 1, "pending_event": Change.processed}
    )
    repo.save(pending)
    repo.settle_event("i9", 2)  # not its version: a newer state would carry its own mark
    stored = repo.get("i9")
    assert stored is not None and stored.pending_event is Change.processed
    repo.settle_event("i9", 1)
    stored = repo.get("i9")
    assert stored is not None and stored.pending_event is None and stored.version == 1


def test_list_newest_first_by_status_and_paged(repo):
    for n in range(7):
        status = [Status.done, Status.failed, Status.deleted][n % 3]
        repo.save(_record(f"i{n}", f"2024-01-0{n + 1}T00:00:00.000000Z", status))
    page = repo.list_images(limit=3)
    assert [r.id for r in page.items] == ["i6", "i4", "i3"]  # i5 is deleted
    assert page.next_position and all(isinstance(v, str) for v in page.next_position.values())
    rest = repo.list_images(limit=3, position=page.next_position)
    assert [r.id for r in rest.items] == ["i1", "i0"]
    assert (
        rest.next_position is None
        or repo.list_images(limit=3, position=rest.next_position).items == []
    )
    assert [r.id for r in repo.list_images(status=Status.failed).items] == ["i4", "i1"]
    assert [r.id for r in repo.list_images(status=Status.deleted).items] == ["i5", "i2"]
    assert [r.id for r in repo.iter_images(page_size=2)] == ["i6", "i4", "i3", "i1", "i0"]


def test_find_by_sha256(repo):
    repo.save(_record("a", "2024-01-01T00:00:00.000000Z", sha="11" * 32))
    repo.save(_record("b", "2024-01-02T00:00:00.000000Z", sha="11" * 32))
    repo.save(_record("c", "2024-01-03T00:00:00.000000Z", sha="22" * 32))
    assert sorted(r.id for r in repo.find_by_sha256("11" * 32)) == ["a", "b"]
    assert repo.find_by_sha256("33" * 32) == []


@pytest.mark.parametrize("fault", [DYNAMO_THROTTLED, DYNAMO_INTERNAL, CONNECTION_DROPPED])
def test_dynamodb_faults_become_transient(repo, aws, fault):
    hook = inject(aws[1], "before-send.dynamodb", FailFirst(1, fault))
    with pytest.raises(TransientError):
        repo.get("i1")
    assert hook.injected == 1 and repo.get("i1") is None


def test_missing_table_is_a_setup_error_kept_on_the_queue(aws):
    repo = DynamoImageRepository(aws[1], "no-such-table")
    with pytest.raises(AwsServiceError) as raised:
        repo.get("x")
    assert raised.value.retryable


def test_a_large_upload_streams_to_disk_without_being_held_in_memory(store, aws):
    # GIVEN a 48 MiB object (moto holds it; what matters is what reading it costs us)
    import tracemalloc

    from processor.core.config import EngineConfig
    from processor.imaging.engine import Engine

    size = 48 * 1024 * 1024
    aws[0].put_object(Bucket=BUCKET, Key="raw/big.tif", Body=b"\x00" * size)
    engine = Engine(EngineConfig())
    with store.open(BUCKET, "raw/big.tif") as source:
        # WHEN the engine spools the stream (as the service does)
        tracemalloc.start()
        try:
            with engine.spool(source.stream) as spooled:
                _, peak = tracemalloc.get_traced_memory()
                # THEN the file on disk has every byte, and at most a few MiB were in memory
                assert spooled.size == size and spooled.path.stat().st_size == size
        finally:
            tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB while streaming 48 MiB"


def test_forget_unread_removes_only_a_record_nothing_was_made_for(repo):
    repo.take_up(image_id="i1", bucket=BUCKET, source_key="legacy/i1.jpg", now="2024")
    repo.forget_unread("i1")
    assert repo.get("i1") is None
    # a record past processing stays
    done = _record("i1", "2024-01-01T00:00:00.000000Z")
    repo.save(done)
    repo.forget_unread("i1")
    assert repo.get("i1") == done
