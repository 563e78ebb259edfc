"""An erase the CDN refuses (too many invalidations in progress) waits minutes, on the queue.

The CDN port here is a stand-in with CloudFront's bound on paths in progress: an invalidation
that would go past it is refused with CdnBusy, and room comes back when earlier ones finish.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from processor.core.errors import CdnBusy
from processor.core.events import Kind, ObjectEvent, normalize_sequencer, parse_body
from processor.core.keys import image_id
from processor.core.messages import TRIES_ATTRIBUTE
from processor.core.record import Status
from processor.rules.invalidations import (
    FIRST_WAIT_S,
    MAX_BUSY_TRIES,
    MAX_WAIT_S,
    busy_wait_s,
    total_wait_s,
)
from processor.service.images import Action
from tests.fakes.engine import FakeEngine
from tests.fakes.processor import MemoryRepo, MemoryRetryQueue, MemoryStore, fake_service

pytestmark = pytest.mark.unit

BUCKET, KEY = "bkt", "raw/cat.jpg"


class BoundedCdn:
    """Paths in progress at most ``limit``; ``finish()`` completes every invalidation."""

    def __init__(self, limit: int, in_progress: int = 0) -> None:
        self.limit = limit
        self.in_progress = in_progress
        self.refused = 0
        self.accepted: list[list[str]] = []

    def invalidate(self, paths: Sequence[str]) -> None:
        if self.in_progress + len(paths) > self.limit:
            self.refused += 1
            raise CdnBusy("CreateInvalidation: TooManyInvalidationsInProgress (injected)")
        self.in_progress += len(paths)
        self.accepted.append(list(paths))

    def finish(self) -> None:
        self.in_progress = 0


def test_waits_double_from_two_minutes_up_to_sqs_longest_delay_then_stop() -> None:
    assert busy_wait_s(1, jitter=1.0) == FIRST_WAIT_S
    assert busy_wait_s(2, jitter=1.0) == 2 * FIRST_WAIT_S
    assert busy_wait_s(1, jitter=0.0) == FIRST_WAIT_S // 2
    assert busy_wait_s(MAX_BUSY_TRIES - 1, jitter=1.0) == MAX_WAIT_S
    assert busy_wait_s(MAX_BUSY_TRIES, jitter=0.5) is None
    # Long enough for CloudFront to finish many rounds of invalidations (minutes each).
    assert 3600 <= total_wait_s(0.0) < total_wait_s(1.0) <= 3 * 3600


def test_a_delete_refused_by_a_full_cdn_is_put_back_and_erased_when_room_comes_back() -> None:
    # GIVEN a done image, and a CDN whose invalidations in progress are at the limit
    store, repo, engine = MemoryStore(), MemoryRepo(), FakeEngine()
    cdn, queue = BoundedCdn(limit=3000, in_progress=3000), MemoryRetryQueue()
    service = fake_service(store, repo, engine, cdn=cdn, retry_queue=queue)
    etag = store.upload(BUCKET, KEY, b"jpeg bytes")
    created = ObjectEvent(
        Kind.created, BUCKET, KEY, normalize_sequencer("0A"), etag=etag, name="ObjectCreated:Put"
    )
    assert service.handle(created, time_budget_s=30.0).action is Action.done
    iid = image_id(BUCKET, KEY)

    # WHEN the image is deleted
    store.delete(BUCKET, [KEY])
    removed = ObjectEvent(
        Kind.removed,
        BUCKET,
        KEY,
        normalize_sequencer("0B"),
        name="ObjectRemoved:DeleteMarkerCreated",
    )
    outcome = service.handle(removed, time_budget_s=30.0)

    # THEN it is deleted (the tombstone, counted once) and its erase comes back in minutes
    assert outcome.action is Action.deleted
    assert repo.get(iid).status is Status.deleted  # type: ignore[union-attr]
    (later,) = queue.sent
    assert FIRST_WAIT_S // 2 <= later.delay_s <= FIRST_WAIT_S
    assert later.attributes == {TRIES_ATTRIBUTE: "1"}
    assert store.list_versions(BUCKET, KEY), "nothing is purged before the CDN took the paths"

    # AND still busy when it comes back: put back again, waiting longer
    (again,) = parse_body(later.body)
    assert (again.kind, again.tries) == (Kind.removed, 1)
    outcome = service.handle(again, time_budget_s=30.0)
    assert (outcome.action, outcome.reason) == (Action.retried, "cdn_busy")
    assert queue.sent[-1].delay_s >= FIRST_WAIT_S
    assert queue.sent[-1].attributes == {TRIES_ATTRIBUTE: "2"}

    # AND once the earlier invalidations finished, the next return erases everything
    cdn.finish()
    (third,) = parse_body(queue.sent[-1].body)
    outcome = service.handle(third, time_budget_s=30.0)
    assert (outcome.action, outcome.reason) == (Action.skipped, "duplicate")
    assert cdn.accepted and store.list_versions(BUCKET, KEY) == []
    assert len(queue.sent) == 2


def test_after_the_last_wait_the_queue_retries_and_then_the_dead_letter_queue() -> None:
    store, repo, engine = MemoryStore(), MemoryRepo(), FakeEngine()
    cdn, queue = BoundedCdn(limit=0), MemoryRetryQueue()
    service = fake_service(store, repo, engine, cdn=cdn, retry_queue=queue)
    etag = store.upload(BUCKET, KEY, b"jpeg bytes")
    created = ObjectEvent(
        Kind.created, BUCKET, KEY, normalize_sequencer("0A"), etag=etag, name="ObjectCreated:Put"
    )
    assert service.handle(created, time_budget_s=30.0).action is Action.done
    store.delete(BUCKET, [KEY])
    removed = ObjectEvent(Kind.removed, BUCKET, KEY, normalize_sequencer("0B"), name="x")
    service.handle(removed, time_budget_s=30.0)
    last = ObjectEvent(
        Kind.removed, BUCKET, KEY, normalize_sequencer("0B"), name="x", tries=MAX_BUSY_TRIES - 1
    )
    with pytest.raises(CdnBusy):
        service.handle(last, time_budget_s=30.0)
