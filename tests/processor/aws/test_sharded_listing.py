"""Sharded listings against moto's server over HTTP (property-based).

Whatever the shard count, the ids (so which shard each image lands in), the creation times
(ties included), the page size and what arrives or changes between pages: following ``next``
positions gives every image that is listed throughout, once, in the global newest-first
order (created_at, then id), and never an image twice.
"""

from __future__ import annotations

import itertools
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from api.cursor import MAX_TOKEN_CHARS, CursorSigner
from processor.aws.dynamo import (
    DynamoImageRepository,
    decode_position,
    encode_position,
    serialize,
    to_item,
)
from processor.core.keys import MAX_SHARDS, shard_of
from processor.core.record import ImageRecord, RenditionInfo, ScoreRange, Status
from tests.aws import REGION, create_table

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("sharded_listing_moto")]

_tables = itertools.count()
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        server.stop()


def fresh_repo(dynamodb: Any, shards: int) -> DynamoImageRepository:
    name = f"images-{next(_tables)}"
    create_table(dynamodb, name)
    return DynamoImageRepository(dynamodb, name, shards)


def id_in_shard(n: int, shard: int, shards: int) -> str:
    """An id that lands in ``shard``: the interleaving across shards is the test's to choose."""
    for salt in itertools.count():
        candidate = f"img{n:05d}x{salt}"
        if shard_of(candidate, shards) == shard % shards:
            return candidate
    raise AssertionError("unreachable")


def record(
    n: int,
    minute: int,
    status: Status,
    uploader: str | None = None,
    *,
    shard: int | None = None,
    shards: int = 1,
) -> ImageRecord:
    at = f"2026-01-01T00:{minute:02d}:00.000000Z"
    return ImageRecord(
        id=f"img{n:05d}" if shard is None else id_in_shard(n, shard, shards),
        source_key=f"raw/{n}/a.jpg",
        status=status,
        created_at=at,
        updated_at=at,
        uploader=uploader,
    )


def put(repo: DynamoImageRepository, records: list[ImageRecord]) -> None:
    for start in range(0, len(records), 25):
        repo._client.batch_write_item(
            RequestItems={
                repo.table: [
                    {"PutRequest": {"Item": serialize(to_item(r, repo.shards))}}
                    for r in records[start : start + 25]
                ]
            }
        )


def newest_first(records: list[ImageRecord]) -> list[str]:
    return [r.id for r in sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)]


def order_key(r: ImageRecord) -> str:
    return f"{r.created_at}#{r.id}"


statuses = st.sampled_from(list(Status))
# (shard, minute, status): any interleaving across the shards, and few distinct minutes, so
# that many images share a created_at and the id decides their order.
images = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9), statuses), max_size=40)


# One shard holds all the newest images: it runs dry mid-page and must be read again before
# an older image of another shard may follow.
SKEWED = [(0, 9, Status.done)] * 12 + [(1, 8, Status.done)] * 3 + [(2, 0, Status.failed)] * 3


@PROPERTY
@given(
    shards=st.integers(1, 7),
    specs=images,
    limit=st.integers(1, 12),
    status=st.none() | statuses,
)
@example(shards=4, specs=SKEWED, limit=12, status=None)
@example(shards=4, specs=SKEWED, limit=12, status=Status.done)
def test_pages_are_the_global_newest_first_order(dynamodb, shards, specs, limit, status):
    repo = fresh_repo(dynamodb, shards)
    records = [
        record(n, minute, s, shard=k, shards=shards) for n, (k, minute, s) in enumerate(specs)
    ]
    put(repo, records)
    wanted = [r for r in records if (r.status is status if status else r.status != "deleted")]

    seen: list[str] = []
    position = None
    for _ in range(len(records) + 2):
        page = repo.list_images(status=status, limit=limit, position=position)
        assert len(page.items) <= limit
        seen += [r.id for r in page.items]
        position = page.next_position
        if position is None:
            break
    assert position is None, "the listing did not end"
    assert seen == newest_first(wanted)


@PROPERTY
@given(
    shards=st.integers(1, 7),
    specs=images,
    limit=st.integers(1, 6),
    arrivals=st.lists(st.lists(st.tuples(st.integers(0, 12), statuses), max_size=4), max_size=6),
    changes=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(["processing", "done"]))),
)
def test_paging_while_images_arrive_and_change_has_no_duplicates_and_no_gaps(
    dynamodb, shards, specs, limit, arrivals, changes
):
    # GIVEN images, some of which move between processing and done while pages are read
    repo = fresh_repo(dynamodb, shards)
    records = [
        record(n, minute, s, shard=k, shards=shards) for n, (k, minute, s) in enumerate(specs)
    ]
    put(repo, records)
    live_throughout = {r.id for r in records if r.status is not Status.deleted}
    pending_changes = [(i, s) for i, s in changes if i < len(records)]
    born = itertools.count(len(records))

    seen: list[ImageRecord] = []
    position = None
    for step in itertools.count():
        page = repo.list_images(limit=limit, position=position)
        seen += page.items
        position = page.next_position
        if position is None:
            break
        assert step < 200, "the listing did not end"
        # WHEN new images arrive (any creation time) and listed ones change state
        batch = arrivals[step] if step < len(arrivals) else []
        for minute, status in batch:
            repo.save(record(next(born), minute, status))
        if pending_changes:
            index, status = pending_changes.pop(0)
            if records[index].status is not Status.deleted:
                changed = {"status": Status(status), "version": records[index].version + 1}
                records[index] = records[index].model_copy(update=changed)
                repo.save(records[index])

    # THEN strictly newest first (so nothing twice), and nothing listed throughout is missed
    keys = [order_key(r) for r in seen]
    assert keys == sorted(set(keys), reverse=True)
    assert live_throughout <= {r.id for r in seen}
    assert all(r.status is not Status.deleted for r in seen)


@PROPERTY
@given(
    shards=st.integers(1, 5),
    specs=st.lists(
        st.tuples(
            st.integers(0, 4), st.integers(0, 9), statuses, st.sampled_from(["ann", "bob", None])
        ),
        max_size=30,
    ),
    limit=st.integers(1, 7),
)
def test_an_uploaders_pages_are_their_images_newest_first(dynamodb, shards, specs, limit):
    repo = fresh_repo(dynamodb, shards)
    records = [
        record(n, m, s, who, shard=k, shards=shards) for n, (k, m, s, who) in enumerate(specs)
    ]
    put(repo, records)
    wanted = [r for r in records if r.uploader == "ann" and r.status is not Status.deleted]

    seen: list[str] = []
    position = None
    for _ in range(len(records) + 2):
        page = repo.list_by_uploader("ann", limit=limit, position=position)
        seen += [r.id for r in page.items]
        position = page.next_position
        if position is None:
            break
    assert position is None
    assert seen == newest_first(wanted)


def test_done_pages_skip_a_shard_full_of_other_states_within_the_query_budget(dynamodb):
    # GIVEN one done image below many failed ones (all in by_created, filtered out for done)
    repo = fresh_repo(dynamodb, 2)
    failed = [record(n, 30, Status.failed) for n in range(120)]
    old = record(999, 1, Status.done)
    put(repo, [*failed, old])
    # WHEN pages of 2 done images are followed
    seen: list[str] = []
    position = None
    pages = 0
    while pages < 100:
        page = repo.list_images(status=Status.done, limit=2, position=position)
        pages += 1
        seen += [r.id for r in page.items]
        position = page.next_position
        if position is None:
            break
    # THEN the one done image, once, after pages that advanced over the failed ones
    assert position is None, "the listing did not end"
    assert seen == [old.id]
    assert pages >= 2


def test_every_shard_position_fits_a_cursor() -> None:
    # The longest position: a boundary plus every one of the most shards exhausted.
    boundary = "9999-12-31T23:59:59.999999Z#" + "z" * 26
    position = encode_position(boundary, list(range(MAX_SHARDS)))
    assert decode_position(position) == (boundary, frozenset(range(MAX_SHARDS)))
    token = CursorSigner(b"k" * 32).encode(position, context="images:newest:live")
    assert len(token) < 200 < MAX_TOKEN_CHARS  # as api/cursor.py says


def test_positions_from_the_single_partition_listing_still_work() -> None:
    old = {"id": "a", "sort_key": "2026-01-01T00:00:00.000000Z#a", "list_pk": "image"}
    assert decode_position(old) == ("2026-01-01T00:00:00.000000Z#a", frozenset())
    with pytest.raises(ValueError):
        decode_position({"id": "a"})


def with_score(r: ImageRecord, score: float | None) -> ImageRecord:
    still = RenditionInfo(
        name="thumb",
        key=f"thumbs/{r.id}.jpg",
        format="jpeg",
        content_type="image/jpeg",
        width=320,
        height=240,
        bytes=9000,
        score=score,
    )
    return r.model_copy(update={"renditions": [still, still.model_copy(update={"score": 99.0})]})


@pytest.mark.parametrize(("status", "uploader"), [(None, None), (Status.done, None), (None, "u")])
def test_a_score_filter_pages_through_every_shard_without_gaps(dynamodb, status, uploader):
    # GIVEN 40 images over 3 shards, every third one never scored, worst scores 40 to 79
    repo = fresh_repo(dynamodb, 3)
    records = [
        with_score(
            record(n, n % 10, Status.done, "u", shard=n % 3, shards=3),
            None if n % 3 == 0 else 40.0 + n,
        )
        for n in range(40)
    ]
    put(repo, records)
    scores = ScoreRange(min_score=45, max_score=70)
    # WHEN the filtered listing is followed 4 at a time
    seen: list[str] = []
    position = None
    for _ in range(40):
        page = repo.list_images(
            status=status, limit=4, position=position, uploader=uploader, scores=scores
        )
        assert len(page.items) <= 4
        seen += [r.id for r in page.items]
        position = page.next_position
        if position is None:
            break
    # THEN every image whose worst rendition is in the range, once, newest first
    assert position is None
    assert seen == newest_first([r for r in records if scores.admits(r.renditions)])
    assert len(seen) == 17
