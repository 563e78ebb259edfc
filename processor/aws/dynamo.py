"""DynamoImageRepository: the only code that talks to the image table.

Table (infra/template.yaml, the local stack and the tests build the same one):
key ``id``; on every item also ``list_pk`` = "image", ``sort_key`` = f"{created_at}#{id}",
``status`` and, once the bytes are known, ``sha256``. GSIs (projection ALL):
``by_created`` (list_pk, sort_key), ``by_status`` (status, sort_key), ``by_sha256`` (sha256).
Lists are Queries on those, newest first; never a Scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from processor.aws.errors import translate, translated
from processor.core.errors import StaleEvent
from processor.core.ports import Page
from processor.core.record import ImageRecord, Status

LIST_PK = "image"
BY_CREATED = "by_created"
BY_STATUS = "by_status"
BY_SHA256 = "by_sha256"
# A page without a status filter skips deleted items; bound the Queries one page may take.
_MAX_QUERIES_PER_PAGE = 10

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def sort_key(record: ImageRecord) -> str:
    return f"{record.created_at}#{record.id}"


def to_item(record: ImageRecord) -> dict[str, Any]:
    """The stored item: the record plus the top-level attributes the indexes use."""
    item = record.to_item()
    item["list_pk"] = LIST_PK
    item["sort_key"] = sort_key(record)
    item["status"] = record.status.value
    if record.facts is not None:
        item["sha256"] = record.facts.sha256
    return item


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def from_item(item: dict[str, Any]) -> ImageRecord:
    """A low-level (typed) item -> the record; index attributes are dropped by the model."""
    return ImageRecord.from_item(deserialize(item))


class DynamoImageRepository:
    """ImageReader (processor/core/ports.py) + ImageRepository (processor/core/ports.py)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self.table = table

    # --- read side -----------------------------------------------------------------------

    def get(self, image_id: str) -> ImageRecord | None:
        with translated(f"GetItem {self.table} {image_id}"):
            response = self._client.get_item(
                TableName=self.table, Key={"id": {"S": image_id}}, ConsistentRead=True
            )
        item = response.get("Item")
        return from_item(item) if item else None

    def list_images(
        self,
        *,
        status: Status | None = None,
        limit: int = 50,
        position: dict[str, str] | None = None,
    ) -> Page:
        """Newest first. Without a status, deleted images are left out (by_created + filter)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        query: dict[str, Any] = {"TableName": self.table, "ScanIndexForward": False}
        if status is None:
            query |= {
                "IndexName": BY_CREATED,
                "KeyConditionExpression": "list_pk = :pk",
                "FilterExpression": "#status <> :deleted",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":pk": {"S": LIST_PK},
                    ":deleted": {"S": Status.deleted.value},
                },
            }
        else:
            query |= {
                "IndexName": BY_STATUS,
                "KeyConditionExpression": "#status = :status",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":status": {"S": Status(status).value}},
            }
        items: list[ImageRecord] = []
        start = position
        for _ in range(_MAX_QUERIES_PER_PAGE):
            # Ask for no more than still fits: every evaluated item is then either returned
            # or filtered out, so LastEvaluatedKey is exactly where the next page starts.
            request = dict(query, Limit=limit - len(items))
            if start:
                request["ExclusiveStartKey"] = {k: {"S": v} for k, v in start.items()}
            with translated(f"Query {self.table}/{request['IndexName']}"):
                response = self._client.query(**request)
            items.extend(from_item(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            start = (
                {k: str(_deserializer.deserialize(v)) for k, v in last.items()} if last else None
            )
            if start is None or len(items) >= limit:
                break
        return Page(items=items, next_position=start)

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
        return [from_item(i) for i in response.get("Items", [])]

    # --- write side ----------------------------------------------------------------------

    def begin(self, *, image_id: str, bucket: str, source_key: str, now: str) -> ImageRecord:
        fresh = ImageRecord.first_sight(
            image_id=image_id, bucket=bucket, source_key=source_key, now=now
        )
        try:
            self._client.put_item(
                TableName=self.table,
                Item=serialize(to_item(fresh)),
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

    def save(self, record: ImageRecord) -> ImageRecord | None:
        names = {"#id": "id", "#seq": "sequencer"}
        if record.sequencer is None:
            condition = "attribute_not_exists(#id) OR attribute_not_exists(#seq)"
            values: dict[str, Any] = {}
        else:
            # Sequencers are stored right-padded to one width (processor/core/events.py), so a
            # string comparison is the S3-documented order.
            condition = "attribute_not_exists(#id) OR attribute_not_exists(#seq) OR #seq <= :seq"
            values = {":seq": {"S": record.sequencer}}
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": serialize(to_item(record)),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_OLD",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        with translated(f"PutItem {self.table} {record.id} ({record.status})"):
            response = self._client.put_item(**request)
        old = response.get("Attributes")
        return from_item(old) if old else None
