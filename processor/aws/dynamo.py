"""DynamoImageRepository: the only code that talks to the image table.

Table (infra/template.yaml; the local stack and the tests build the same one): key ``id``.
Every index key is spread over ``shards`` partition-key values, ``<prefix>#<shard>`` with
``shard = hash(id) % shards``, so that no partition key takes more than ``1/shards`` of the
writes (docs/capacity.md has the arithmetic). The attributes the indexes key on:

- ``list_pk`` = ``image#<shard>``, on every item but a deleted one; ``sort_key`` =
  ``<created_at>#<id>`` on every item. Index ``by_created`` (list_pk, sort_key): the listing.
- ``state_pk`` = ``<status>#<shard>``, only while the status is not ``done`` (sparse): index
  ``by_state`` (state_pk, sort_key) lists processing, failed and deleted images, and a done
  write leaves it alone.
- ``sha256`` once the bytes are known: index ``by_sha256`` (keys only; the records are read
  with BatchGetItem).
- ``uploader_pk`` = ``<uploader>#<shard>`` when the record has an uploader: index
  ``by_uploader`` (keys only, BatchGetItem).

``by_created`` and ``by_state`` project what a listing shows (``LISTED``), so a page is Queries
only. A listing queries every shard newest first and merges them in order; its position is one
boundary (``before``: the sort key the next page starts below) plus the shards already
exhausted, which is every shard's position: in an ordered merge each live shard has returned
everything above the boundary and nothing below it. Never a Scan.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from processor.aws.errors import translate, translated
from processor.core.errors import (
    ConcurrentWrite,
    NoSuchRendition,
    OnDemandLimit,
    StaleEvent,
    TransientError,
)
from processor.core.keys import DEFAULT_SHARDS, MAX_SHARDS, shard_of
from processor.core.ports import Page
from processor.core.record import ImageRecord, RenditionInfo, ScoreRange, Status

BY_CREATED = "by_created"
BY_STATE = "by_state"
BY_SHA256 = "by_sha256"
BY_UPLOADER = "by_uploader"
# Attributes of sizes made on demand, beside the record's own (claim_size, add_size).
SIZE_CLAIM = "size_claim#"
SIZES_CLAIMED = "sizes_claimed"
SIZES_MADE = "sizes_made"
# Record fields a listing does not return (by_created and by_state leave them out of their
# projection): get() the record before acting on them.
UNLISTED = frozenset(
    {
        "sequencer",
        "content_version",
        "processing_ms",
        "timings",
        "version",
        "pending_event",
        "source_etag",
        "tries",
    }
)
LISTED = tuple(sorted(set(ImageRecord.model_fields) - UNLISTED - {"id"}))
# Queries one page may take beyond the first one per shard (refills of drained shards).
_EXTRA_QUERIES_PER_PAGE = 10
_BATCH_GET_MAX = 100  # keys per BatchGetItem
_BATCH_GET_ROUNDS = 5  # UnprocessedKeys retries before the page gives up as throttled

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def sort_key(record: ImageRecord) -> str:
    return f"{record.created_at}#{record.id}"


def to_item(record: ImageRecord, shards: int = DEFAULT_SHARDS) -> dict[str, Any]:
    """The stored item: the record plus the top-level attributes the indexes key on."""
    item = record.to_item()
    shard = shard_of(record.id, shards)
    item["sort_key"] = sort_key(record)
    item["status"] = record.status.value
    if record.status is not Status.deleted:
        item["list_pk"] = f"image#{shard}"
    if record.status is not Status.done:
        item["state_pk"] = f"{record.status.value}#{shard}"
    if record.facts is not None:
        item["sha256"] = record.facts.sha256
    if record.uploader is not None:
        item["uploader_pk"] = f"{record.uploader}#{shard}"
    return item


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def from_item(item: dict[str, Any]) -> ImageRecord:
    """A low-level (typed) item -> the record; index attributes are dropped by the model."""
    return ImageRecord.from_item(deserialize(item))


# --- listings: several shards, merged newest first ----------------------------------------


@dataclass(frozen=True)
class Listing:
    """One listing: an index, its partition-key prefix, and what else an item must satisfy."""

    index: str
    prefix: str  # partition-key values are f"{prefix}#{shard}"
    hash_key: str
    # Server-side filter of the Query (expression, names, values), for by_created + status.
    filter: tuple[str, dict[str, str], dict[str, Any]] | None = None
    # Keys-only index: the page's records are read with BatchGetItem and must pass this.
    keys_only: bool = False
    keep: Callable[[ImageRecord], bool] = field(default=lambda _: True)


def encode_position(before: str, exhausted: Sequence[int]) -> dict[str, str]:
    position = {"before": before}
    if exhausted:
        position["exhausted"] = format(sum(1 << s for s in set(exhausted)), "x")
    return position


def decode_position(position: dict[str, str] | None) -> tuple[str | None, frozenset[int]]:
    """(boundary, exhausted shards). Accepts the single-partition positions of earlier
    releases (a LastEvaluatedKey with ``sort_key``), so their cursors keep working."""
    if not position:
        return None, frozenset()
    before = position.get("before") or position.get("sort_key")
    if not before:
        raise ValueError("a listing position needs 'before'")
    mask = int(position.get("exhausted", "0"), 16)
    return before, frozenset(s for s in range(mask.bit_length()) if mask >> s & 1)


@dataclass
class _Shard:
    number: int
    pk: str
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    start: dict[str, Any] | None = None  # ExclusiveStartKey of the next Query
    frontier: str | None = None  # sort key of the last item DynamoDB evaluated
    started: bool = False
    exhausted: bool = False

    @property
    def head(self) -> str:
        return str(self.buffer[0]["sort_key"]["S"])

    @property
    def waiting(self) -> bool:
        """Drained but not at its end: the next items are unknown."""
        return not self.buffer and not self.exhausted


class _Merge:
    """A k-way merge of the shards' newest-first Queries, fetched lazily and in parallel."""

    def __init__(
        self,
        repo: DynamoImageRepository,
        listing: Listing,
        limit: int,
        position: dict[str, str] | None,
    ) -> None:
        self.repo = repo
        self.listing = listing
        self.before, exhausted = decode_position(position)
        self.shards = [
            _Shard(n, f"{listing.prefix}#{n}", exhausted=n in exhausted) for n in range(repo.shards)
        ]
        # Enough per shard that one round usually fills a page: a page of `limit` spread over
        # the shards at random gives each about limit/shards, rarely twice that.
        self.batch = min(limit, math.ceil(2 * limit / repo.shards) + 1)
        self.budget = repo.shards + _EXTRA_QUERIES_PER_PAGE
        self.last_taken: str | None = None
        self.stopped_at: str | None = None  # set when the query budget ran out

    def _query(self, shard: _Shard) -> None:
        listing = self.listing
        names = {"#pk": listing.hash_key}
        values: dict[str, Any] = {":pk": {"S": shard.pk}}
        condition = "#pk = :pk"
        if self.before is not None:
            condition += " AND sort_key < :before"
            values[":before"] = {"S": self.before}
        request: dict[str, Any] = {
            "TableName": self.repo.table,
            "IndexName": listing.index,
            "ScanIndexForward": False,
            "KeyConditionExpression": condition,
            "Limit": self.batch,
        }
        if listing.filter is not None:
            expression, more_names, more_values = listing.filter
            request["FilterExpression"] = expression
            names |= more_names
            values |= more_values
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = values
        if shard.start is not None:
            request["ExclusiveStartKey"] = shard.start
        with translated(f"Query {self.repo.table}/{listing.index}"):
            response = self.repo._client.query(**request)
        shard.started = True
        shard.buffer.extend(response.get("Items", []))
        last = response.get("LastEvaluatedKey")
        shard.start = last
        if last is None:
            shard.exhausted = True
        else:
            shard.frontier = str(last["sort_key"]["S"])

    def _fetch(self, shards: list[_Shard]) -> None:
        self.budget -= len(shards)
        if len(shards) == 1:
            self._query(shards[0])
            return
        for future in [self.repo._pool().submit(self._query, s) for s in shards]:
            future.result()  # re-raises the first TransientError and the like

    def take(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` more items, newest first (fewer at the end or when the budget is spent)."""
        out: list[dict[str, Any]] = []
        while len(out) < n:
            heads = [s for s in self.shards if s.buffer]
            best = max(heads, key=lambda s: s.head) if heads else None
            top = best.head if best else None
            # A drained shard blocks unless everything it may still hold is below `top`.
            blocking = [
                s
                for s in self.shards
                if s.waiting and (not s.started or top is None or (s.frontier or "") > top)
            ]
            if blocking:
                if len(blocking) > self.budget:
                    # Everything above the highest frontier of these is consumed everywhere.
                    self.stopped_at = max(s.frontier or "" for s in blocking if s.started) or None
                    break
                self._fetch(blocking)
                continue
            if best is None:
                break
            out.append(best.buffer.popleft())
            self.last_taken = top
        return out

    def position(self) -> dict[str, str] | None:
        """Where the next page starts, or None when every shard is at its end."""
        if all(s.exhausted and not s.buffer for s in self.shards):
            return None
        before = self.stopped_at or self.last_taken or self.before
        if before is None:  # nothing taken, nothing evaluated: start over is all we know
            return None
        exhausted = [s.number for s in self.shards if s.exhausted and not s.buffer]
        return encode_position(before, exhausted)


class DynamoImageRepository:
    """ImageReader (processor/core/ports.py) + ImageRepository (processor/core/ports.py)."""

    def __init__(self, client: Any, table: str, shards: int = DEFAULT_SHARDS) -> None:
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be 1..{MAX_SHARDS}, got {shards}")
        self._client = client
        self.table = table
        self.shards = shards
        self._executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        # One Query per shard goes out at once: sequential round trips would add up per page.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=min(16, self.shards), thread_name_prefix="imgpipe-query"
            )
        return self._executor

    # --- read side -----------------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord | None:
        with translated(f"GetItem {self.table} {image_id}"):
            response = self._client.get_item(
                TableName=self.table, Key={"id": {"S": image_id}}, ConsistentRead=True
            )
        item = response.get("Item")
        return from_item(item) if item else None

    def get_many(self, ids: Sequence[str]) -> dict[str, ImageRecord]:
        """The stored records of ``ids`` (missing ones are left out): ops commands."""
        return self._batch_get(ids)

    def _batch_get(self, ids: Sequence[str]) -> dict[str, ImageRecord]:
        """The stored records of ``ids`` (missing ones are left out), BatchGetItem by 100."""
        found: dict[str, ImageRecord] = {}
        for start in range(0, len(ids), _BATCH_GET_MAX):
            keys = [{"id": {"S": i}} for i in dict.fromkeys(ids[start : start + _BATCH_GET_MAX])]
            for _ in range(_BATCH_GET_ROUNDS):
                with translated(f"BatchGetItem {self.table}"):
                    response = self._client.batch_get_item(
                        RequestItems={self.table: {"Keys": keys}}
                    )
                for item in response.get("Responses", {}).get(self.table, []):
                    record = from_item(item)
                    found[record.id] = record
                keys = response.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if not keys:
                    break
            else:
                raise TransientError(f"BatchGetItem {self.table}: keys left unprocessed")
        return found

    def _page(self, listing: Listing, limit: int, position: dict[str, str] | None) -> Page:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        merge = _Merge(self, listing, limit, position)
        if not listing.keys_only:
            items = [from_item(i) for i in merge.take(limit)]
            return Page(items=[r for r in items if listing.keep(r)], next_position=merge.position())
        records: list[ImageRecord] = []
        while len(records) < limit:
            keys = merge.take(limit - len(records))
            if not keys:
                break
            ids = [str(k["id"]["S"]) for k in keys]
            found = self._batch_get(ids)
            records.extend(found[i] for i in ids if i in found and listing.keep(found[i]))
            if merge.stopped_at is not None:
                break
        return Page(items=records, next_position=merge.position())

    def list_images(
        self,
        *,
        status: Status | None = None,
        limit: int = 50,
        position: dict[str, str] | None = None,
        uploader: str | None = None,
        scores: ScoreRange | None = None,
    ) -> Page:
        """Newest first. Without a status, deleted images are left out (they leave by_created).

        Listed records lack the fields in ``UNLISTED``; ``get()`` one before changing it.
        ``scores`` is applied to each page's records as they are read (the scores live in the
        renditions list, which no key or filter expression reaches): a page may come back
        short, or empty with a next position.
        """
        if uploader is not None:
            return self.list_by_uploader(
                uploader, status=status, limit=limit, position=position, scores=scores
            )
        if status is None:
            listing = Listing(BY_CREATED, "image", "list_pk")
        elif Status(status) is Status.done:
            # Done images are nearly all of by_created: a filter drops the few others, where a
            # done-only index would cost every image another write (docs/capacity.md).
            done_only = (
                "#status = :status",
                {"#status": "status"},
                {":status": {"S": Status.done.value}},
            )
            listing = Listing(BY_CREATED, "image", "list_pk", filter=done_only)
        else:
            listing = Listing(BY_STATE, Status(status).value, "state_pk")
        if scores is not None:
            listing = replace(listing, keep=lambda r: scores.admits(r.renditions))
        return self._page(listing, limit, position)

    def list_by_uploader(
        self,
        uploader: str,
        *,
        status: Status | None = None,
        limit: int = 50,
        position: dict[str, str] | None = None,
        scores: ScoreRange | None = None,
    ) -> Page:
        """One uploader's images, newest first; without a status, deleted ones are left out."""
        wanted = Status(status) if status is not None else None

        def keep(record: ImageRecord) -> bool:
            # The index is eventually consistent: the record read now is what decides.
            if record.uploader != uploader:
                return False
            if scores is not None and not scores.admits(record.renditions):
                return False
            return record.status is wanted if wanted else record.status is not Status.deleted

        listing = Listing(BY_UPLOADER, uploader, "uploader_pk", keys_only=True, keep=keep)
        return self._page(listing, limit, position)

    def iter_images(
        self, *, status: Status | None = None, page_size: int = 100
    ) -> Iterator[ImageRecord]:
        """Every image, newest first, page by page (ops commands)."""
        position: dict[str, str] | None = None
        while True:
            page = self.list_images(status=status, limit=page_size, position=position)
            yield from page.items
            if page.next_position is None:
                return
            position = page.next_position

    def find_by_sha256(self, sha256: str) -> list[ImageRecord]:
        with translated(f"Query {self.table}/{BY_SHA256}"):
            response = self._client.query(
                TableName=self.table,
                IndexName=BY_SHA256,
                KeyConditionExpression="sha256 = :h",
                ExpressionAttributeValues={":h": {"S": sha256}},
                Limit=25,
            )
        ids = [str(i["id"]["S"]) for i in response.get("Items", [])]
        if not ids:
            return []
        found = self._batch_get(ids)
        # The index lags the table: keep only records whose bytes still hash to sha256.
        records = [found[i] for i in ids if i in found]
        return [r for r in records if r.facts is not None and r.facts.sha256 == sha256]

    # --- write side ----------------------------------------------------------------------

    def _item(self, record: ImageRecord) -> dict[str, Any]:
        return serialize(to_item(record, self.shards))

    def begin(
        self,
        *,
        image_id: str,
        bucket: str,
        source_key: str,
        now: str,
        uploader: str | None = None,
    ) -> ImageRecord:
        fresh = ImageRecord.first_sight(
            image_id=image_id, bucket=bucket, source_key=source_key, now=now, uploader=uploader
        )
        try:
            self._client.put_item(
                TableName=self.table,
                Item=self._item(fresh),
                ConditionExpression="attribute_not_exists(id)",
            )
        except (ClientError, BotoCoreError) as e:
            error = translate(e, f"PutItem {self.table} {image_id} (first sight)")
            if not isinstance(error, StaleEvent):
                raise error from e
            # Someone saw it first: theirs is the record (and the created_at) to keep.
            stored = self.get(image_id)
            if stored is None:  # deleted between the two calls: nothing left to agree with
                raise error from e
            return stored
        return fresh

    def take_up(
        self, *, image_id: str, bucket: str, source_key: str, now: str, exists: bool = False
    ) -> ImageRecord | None:
        """A missing record is written whole, as first sight with one try (one conditional
        PutItem, as ``begin``); one still ``processing`` gets one more try (an UpdateItem
        that adds to ``tries`` alone, which no index projects: the table's write only). With
        ``exists`` (the caller has just read it) the create is not tried first; either way a
        race with another writer falls through to the other."""
        if not exists:
            fresh = ImageRecord.first_sight(
                image_id=image_id, bucket=bucket, source_key=source_key, now=now
            ).model_copy(update={"tries": 1})
            try:
                self._client.put_item(
                    TableName=self.table,
                    Item=self._item(fresh),
                    ConditionExpression="attribute_not_exists(id)",
                )
                return fresh
            except (ClientError, BotoCoreError) as e:
                error = translate(e, f"PutItem {self.table} {image_id} (first try)")
                if not isinstance(error, StaleEvent):
                    raise error from e
                # Someone saw it first: count this try on theirs.
        return self._add_tries(image_id, 1)

    def put_back(self, image_id: str) -> None:
        self._add_tries(image_id, -1)

    def forget_unread(self, image_id: str) -> None:
        try:
            self._client.delete_item(
                TableName=self.table,
                Key={"id": {"S": image_id}},
                ConditionExpression=(
                    "#status = :processing AND (attribute_not_exists(#r) OR size(#r) = :none)"
                ),
                ExpressionAttributeNames={"#status": "status", "#r": "renditions"},
                ExpressionAttributeValues=serialize(
                    {":processing": Status.processing.value, ":none": 0}
                ),
            )
        except (ClientError, BotoCoreError) as e:
            error = translate(e, f"DeleteItem {self.table} {image_id} (unread)")
            if isinstance(error, StaleEvent):
                return  # moved on meanwhile: that state stands
            raise error from e

    def _add_tries(self, image_id: str, delta: int) -> ImageRecord | None:
        """``tries`` of a record still ``processing`` moved by ``delta`` (never below zero);
        None when there is no such record (gone, done, failed, deleted, nothing to take back)."""
        condition = "#status = :processing"
        values: dict[str, Any] = {":delta": delta, ":processing": Status.processing.value}
        if delta < 0:
            condition += " AND #tries >= :least"
            values[":least"] = -delta
        try:
            response = self._client.update_item(
                TableName=self.table,
                Key={"id": {"S": image_id}},
                UpdateExpression="ADD #tries :delta",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#tries": "tries", "#status": "status"},
                ExpressionAttributeValues=serialize(values),
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as e:
            error = translate(e, f"UpdateItem {self.table} {image_id} (tries {delta:+d})")
            if isinstance(error, StaleEvent):
                return None
            raise error from e
        return from_item(response["Attributes"])

    def save(self, record: ImageRecord) -> ImageRecord | None:
        names = {"#id": "id", "#seq": "sequencer", "#ver": "version"}
        values: dict[str, Any] = {":ver": {"N": str(record.version)}}
        if record.sequencer is None:
            ordered = "attribute_not_exists(#id) OR attribute_not_exists(#seq)"
        else:
            # Sequencers are stored right-padded to one width (processor/core/events.py), so a
            # string comparison is the S3-documented order.
            ordered = "attribute_not_exists(#id) OR attribute_not_exists(#seq) OR #seq <= :seq"
            values[":seq"] = {"S": record.sequencer}
        # Versions only grow: of two writers that read the same state, the second loses here
        # even when its event is as new, so no two states share a version (an event's id).
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": self._item(record),
            "ConditionExpression": f"({ordered}) AND (attribute_not_exists(#ver) OR #ver < :ver)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_OLD",
        }
        what = f"PutItem {self.table} {record.id} ({record.status})"
        try:
            response = self._client.put_item(**request)
        except (ClientError, BotoCoreError) as e:
            error = translate(e, what)
            if isinstance(error, StaleEvent) and not self._newer_stored(record):
                # Lost to a write of the same or an older event: not stale, just raced. The
                # message is tried again and decides from the state that won.
                raise ConcurrentWrite(f"{what}: another write of this image came first") from e
            raise error from e
        old = response.get("Attributes")
        return from_item(old) if old else None

    def _newer_stored(self, record: ImageRecord) -> bool:
        """Whether the stored record is newer than ``record`` by S3's order (save's rule)."""
        stored = self.get(record.id)
        if stored is None or stored.sequencer is None:
            return False
        return record.sequencer is None or stored.sequencer > record.sequencer

    def settle_event(self, image_id: str, version: int) -> None:
        try:
            self._client.update_item(
                TableName=self.table,
                Key={"id": {"S": image_id}},
                UpdateExpression="REMOVE pending_event",
                ConditionExpression="#ver = :ver",
                ExpressionAttributeNames={"#ver": "version"},
                ExpressionAttributeValues={":ver": {"N": str(version)}},
            )
        except (ClientError, BotoCoreError) as e:
            error = translate(e, f"UpdateItem {self.table} {image_id} (event published)")
            if not isinstance(error, StaleEvent):
                raise error from e
            # The record has moved on: the newer state carries (and settles) its own event.

    # --- sizes made on demand (SizeClaims, processor/core/ports.py) ----------------------
    #
    # Two attributes of the image's item that the record model does not carry, so the next
    # state the processor saves (a whole PutItem) drops them with the sizes it replaces:
    # ``size_claim#<key>`` (epoch seconds of the claim) and ``sizes_made`` (a string set of
    # the keys the record lists, so a size is listed once), plus the counter ``sizes_claimed``.

    def claim_size(
        self,
        image_id: str,
        *,
        key: str,
        content_version: str,
        now: int,
        stale_before: int,
        max_per_image: int,
    ) -> bool:
        names = {
            "#status": "status",
            "#cv": "content_version",
            "#claim": f"{SIZE_CLAIM}{key}",
            "#claimed": SIZES_CLAIMED,
            "#made": SIZES_MADE,
        }
        values = serialize(
            {
                ":done": Status.done.value,
                ":cv": content_version,
                ":key": key,
                ":now": now,
                ":stale": stale_before,
                ":one": 1,
                ":max": max_per_image,
            }
        )
        try:
            self._client.update_item(
                TableName=self.table,
                Key={"id": {"S": image_id}},
                UpdateExpression="SET #claim = :now ADD #claimed :one",
                # Made and listed already: a request that missed the file just before it
                # was written must not make it again once the claim is released.
                ConditionExpression="#status = :done AND #cv = :cv AND NOT contains(#made, :key)"
                " AND (attribute_not_exists(#claim) OR #claim < :stale)"
                " AND (attribute_not_exists(#claimed) OR #claimed < :max)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except (ClientError, BotoCoreError) as e:
            error = translate(e, f"UpdateItem {self.table} {image_id} (claim {key})")
            if not isinstance(error, StaleEvent):
                raise error from e
        # Refused: say why, from the item as it is now.
        with translated(f"GetItem {self.table} {image_id}"):
            item = self._client.get_item(
                TableName=self.table, Key={"id": {"S": image_id}}, ConsistentRead=True
            ).get("Item")
        stored = deserialize(item) if item else {}
        if stored.get("status") != Status.done.value or stored.get("content_version") != (
            content_version
        ):
            raise NoSuchRendition(f"no done image {image_id} at version {content_version}")
        if key in stored.get(SIZES_MADE, set()):
            return False  # made: its file is there to read
        claim = stored.get(f"{SIZE_CLAIM}{key}")
        if claim is not None and int(claim) >= stale_before:
            return False  # someone else is making it
        if int(stored.get(SIZES_CLAIMED, 0)) >= max_per_image:
            raise OnDemandLimit(
                f"image {image_id} has had its {max_per_image} sizes made on demand"
            )
        return False  # raced with a claim that has just gone stale or been released

    def add_size(self, image_id: str, *, content_version: str, info: RenditionInfo) -> bool:
        rendition = info.to_item()
        names = {
            "#status": "status",
            "#cv": "content_version",
            "#r": "renditions",
            "#made": SIZES_MADE,
            "#claim": f"{SIZE_CLAIM}{info.key}",
        }
        values = serialize({":done": Status.done.value, ":cv": content_version, ":key": info.key})
        values[":new"] = {"L": [_serializer.serialize(rendition)]}
        values[":keys"] = {"SS": [info.key]}
        values[":none"] = {"L": []}
        try:
            self._client.update_item(
                TableName=self.table,
                Key={"id": {"S": image_id}},
                UpdateExpression="SET #r = list_append(if_not_exists(#r, :none), :new)"
                " ADD #made :keys REMOVE #claim",
                ConditionExpression="#status = :done AND #cv = :cv AND NOT contains(#made, :key)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as e:
            error = translate(e, f"UpdateItem {self.table} {image_id} (add {info.key})")
            if not isinstance(error, StaleEvent):
                raise error from e
            return False
        return True
