"""Slowness is not failure: a try starved of CPU comes back later, alone; a try that dies with
its invocation is taken up again, and the record counts the tries.

The fake engine moves fake clocks as the work would (a starved try gets a tenth of a CPU for
its whole budget, a heavy one keeps more than one busy), so no test depends on this machine's
load or compares measured times.
"""

from __future__ import annotations

import json

import pytest

from processor.core.errors import TransientError
from processor.core.events import Kind, ObjectEvent, normalize_sequencer, parse_body, retry_message
from processor.core.keys import image_id
from processor.core.messages import TRIES_ATTRIBUTE
from processor.core.record import Status
from processor.rules.tries import ONE_VCPU_MB
from processor.service.images import Action, ProcessorService
from tests.fakes.engine import FakeEngine
from tests.fakes.processor import MemoryRepo, MemoryRetryQueue, MemoryStore, fake_service

pytestmark = pytest.mark.unit

BUCKET = "bkt"
KEY = "raw/phone.heic"


def build(
    *, queue: MemoryRetryQueue | None = None, memory_mb: int = 2048
) -> tuple[ProcessorService, MemoryStore, MemoryRepo, FakeEngine]:
    store, repo, engine = MemoryStore(), MemoryRepo(), FakeEngine()
    service = fake_service(
        store,
        repo,
        engine,
        clocks=engine.clocks,
        cpu_share=min(1.0, memory_mb / ONE_VCPU_MB),
        retry_queue=queue,
        retry_delay_s=45,
    )
    return service, store, repo, engine


def upload(store: MemoryStore, data: bytes, key: str = KEY, seq: str = "0A") -> ObjectEvent:
    etag = store.upload(BUCKET, key, data)
    return ObjectEvent(
        Kind.created, BUCKET, key, normalize_sequencer(seq), etag=etag, name="ObjectCreated:Put"
    )


class InvocationKilled(BaseException):
    """What the service sees of Lambda stopping the invocation mid-image: nothing after it
    runs (no ``except Exception`` catches it, as nothing catches a SIGKILL)."""


def deliver(service: ProcessorService, event: ObjectEvent):
    return service.handle(event, time_budget_s=30.0)


def killed(service: ProcessorService, engine: FakeEngine, event: ObjectEvent) -> None:
    """One delivery whose invocation is stopped while the engine works on the image."""

    def stop() -> None:
        raise InvocationKilled

    engine.before_process = stop
    try:
        with pytest.raises(InvocationKilled):
            deliver(service, event)
    finally:
        engine.before_process = None


def test_a_starved_timeout_comes_back_later_alone_and_then_is_done():
    # GIVEN an upload whose first try is starved of CPU (a tenth of a CPU for its budget)
    queue = MemoryRetryQueue()
    service, store, repo, engine = build(queue=queue)
    event = upload(store, b"STARVED ONCE phone")
    iid = image_id(BUCKET, KEY)

    # WHEN it is delivered
    outcome = deliver(service, event)

    # THEN it is not failed: a retry message is sent, delayed, marked for running alone
    assert (outcome.action, outcome.reason, outcome.tries) == (Action.retried, "starved", 1)
    assert outcome.error is not None and outcome.error.code == "timeout"
    (sent,) = queue.sent
    assert sent.delay_s == 45 and sent.attributes == {TRIES_ATTRIBUTE: "1"}
    (again,) = parse_body(sent.body)
    assert again == ObjectEvent(**{**event.__dict__, "tries": 1})  # same order, same ETag
    # ... the record waits, processing, with its try counted, and nothing is in public/
    record = repo.records[iid]
    assert (record.status, record.tries, record.error) == (Status.processing, 1, None)
    assert store.keys("public/") == []

    # WHEN the retry arrives THEN it is done, and the record says it took two tries
    outcome = deliver(service, again)
    assert (outcome.action, outcome.tries) == (Action.done, 2)
    assert (repo.records[iid].status, repo.records[iid].tries) == (Status.done, 2)
    assert engine.processed == [iid, iid] and len(queue.sent) == 1


def test_a_starved_retry_that_times_out_again_is_final():
    queue = MemoryRetryQueue()
    service, store, repo, _ = build(queue=queue)
    deliver(service, upload(store, b"STARVED always"))
    (again,) = parse_body(queue.sent[0].body)

    outcome = deliver(service, again)

    assert (outcome.action, outcome.error.code, outcome.tries) == (Action.failed, "timeout", 2)
    record = repo.records[image_id(BUCKET, KEY)]
    assert (record.status, record.error.code, record.tries) == (Status.failed, "timeout", 2)
    # the message tells the user it was the machine, not the image
    assert "got 10% of a CPU" in record.error.message
    assert "less loaded" in record.error.message
    assert len(queue.sent) == 1  # retried once, never again


def test_a_heavy_image_fails_at_once_as_before():
    # GIVEN an image whose work kept the CPU busy for its whole budget
    queue = MemoryRetryQueue()
    service, store, repo, _ = build(queue=queue)

    outcome = deliver(service, upload(store, b"SLOW heavy"))

    assert (outcome.action, outcome.error.code, outcome.tries) == (Action.failed, "timeout", 1)
    assert "starved" not in repo.records[image_id(BUCKET, KEY)].error.message
    assert queue.sent == []


@pytest.mark.parametrize(("memory_mb", "action"), [(2048, Action.retried), (512, Action.failed)])
def test_starvation_is_judged_against_the_functions_share_of_a_cpu(memory_mb, action):
    # GIVEN a try that got a quarter of a CPU: starved on a 1-vCPU function, but all a
    # 512 MB function (0.29 of a vCPU) ever gets
    queue = MemoryRetryQueue()
    service, store, _, engine = build(queue=queue, memory_mb=memory_mb)
    engine.starved_cpu = 0.25

    assert deliver(service, upload(store, b"STARVED")).action is action


def test_without_a_queue_to_come_back_on_a_starved_timeout_is_final():
    service, store, repo, _ = build(queue=None)
    outcome = deliver(service, upload(store, b"STARVED"))
    assert (outcome.action, outcome.error.code) == (Action.failed, "timeout")


def test_a_retry_that_cannot_be_sent_leaves_the_message_to_the_queue():
    queue = MemoryRetryQueue(failures=1)
    service, store, repo, _ = build(queue=queue)
    with pytest.raises(TransientError):
        deliver(service, upload(store, b"STARVED ONCE"))
    record = repo.records[image_id(BUCKET, KEY)]
    assert (record.status, record.tries) == (Status.processing, 0)  # it was no try


def test_a_new_upload_to_a_done_key_counts_tries_from_its_message():
    # GIVEN a key already done, then new bytes that are starved once
    queue = MemoryRetryQueue()
    service, store, repo, _ = build(queue=queue)
    deliver(service, upload(store, b"first bytes", seq="0A"))
    outcome = deliver(service, upload(store, b"STARVED ONCE new", seq="0B"))
    assert outcome.action is Action.retried
    record = repo.records[image_id(BUCKET, KEY)]
    assert (record.status, record.tries) == (Status.done, 1)  # the old version stays shown
    (again,) = parse_body(queue.sent[0].body)
    assert deliver(service, again).tries == 2
    assert repo.records[image_id(BUCKET, KEY)].tries == 2


def test_an_upload_seen_before_its_turn_has_a_record_with_no_try_yet():
    # GIVEN an invocation that records its batch's first sights, then dies before this image
    service, store, repo, engine = build()
    event = upload(store, b"waiting")
    service.first_sight(event)
    # THEN the upload has its record, processing, and no try is counted for it
    record = repo.records[image_id(BUCKET, KEY)]
    assert (record.status, record.tries, record.source_key) == (Status.processing, None, KEY)
    # ... so the next delivery is its first try
    assert (deliver(service, event).tries, engine.processed) == (1, [image_id(BUCKET, KEY)])


def test_a_try_stopped_with_its_invocation_is_counted_and_the_next_is_done():
    service, store, repo, engine = build()
    event = upload(store, b"fine")
    killed(service, engine, event)
    record = repo.records[image_id(BUCKET, KEY)]
    assert (record.status, record.tries) == (Status.processing, 1)  # nothing else happened

    outcome = deliver(service, event)  # SQS delivers it again

    assert (outcome.action, outcome.tries) == (Action.done, 2)
    assert repo.records[image_id(BUCKET, KEY)].tries == 2


def test_an_image_stopped_twice_with_its_invocation_is_failed_not_left_processing():
    service, store, repo, engine = build()
    event = upload(store, b"uninterruptible")
    killed(service, engine, event)
    killed(service, engine, event)
    engine.before_process = lambda: pytest.fail("a third try")

    outcome = deliver(service, event)

    assert (outcome.action, outcome.error.code, outcome.tries) == (Action.failed, "interrupted", 2)
    record = repo.records[image_id(BUCKET, KEY)]
    assert (record.status, record.error.code, record.tries) == (Status.failed, "interrupted", 2)
    assert "stopped 2 times" in record.error.message


def test_a_starved_retry_whose_invocation_dies_is_taken_up_again():
    queue = MemoryRetryQueue()
    service, store, repo, engine = build(queue=queue)
    deliver(service, upload(store, b"STARVED ONCE"))
    (again,) = parse_body(queue.sent[0].body)
    killed(service, engine, again)  # the retry's invocation dies: try 2 never ended

    outcome = deliver(service, again)  # its message comes back

    assert (outcome.action, outcome.tries) == (Action.done, 3)


@pytest.mark.parametrize("method", ["open", "put"])
def test_an_error_the_queue_retries_is_no_try(method):
    service, store, repo, _ = build()
    event = upload(store, b"fine")
    store.failures[method] = 1
    with pytest.raises(TransientError):
        deliver(service, event)
    assert repo.records[image_id(BUCKET, KEY)].tries == 0

    assert deliver(service, event).tries == 1


def test_a_retry_message_round_trips_every_field_that_orders_it():
    event = ObjectEvent(
        Kind.reprocess, BUCKET, "raw/a b+c.jpg", normalize_sequencer("0F"), "e", 9, "n", "t"
    )
    body = json.loads(retry_message(event, 1))
    assert body["type"] == "imgpipe.retry" and body["key"] == "raw/a b+c.jpg"
    (parsed,) = parse_body(json.dumps(body))
    assert parsed == ObjectEvent(**{**event.__dict__, "tries": 1})
