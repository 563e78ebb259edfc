"""The API's composition root: builds the adapters once per app, on first use.

Nothing here runs at import or app creation: boto3 alone costs ~250 ms to import, and a
request that needs no AWS (health, docs, an invalid request) should not pay for it. Tests
replace these through ``app.dependency_overrides`` (see api/deps.py) instead.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from api.cursor import CursorSigner

if TYPE_CHECKING:
    from api.ports import ObjectStore, Queue
    from api.settings import ApiSettings
    from processor.ports import ImageReader


class Services:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings

    @cached_property
    def signer(self) -> CursorSigner:
        return CursorSigner(self.settings.cursor_key)

    @cached_property
    def repo(self) -> ImageReader:
        from api.adapters import aws_client
        from processor.adapters.dynamo import DynamoImageRepository

        s = self.settings
        client = aws_client("dynamodb", region=s.region, endpoint_url=s.endpoint_url)
        return DynamoImageRepository(client, s.table)

    @cached_property
    def store(self) -> ObjectStore:
        from api.adapters import S3ObjectStore, aws_client

        s = self.settings
        return S3ObjectStore(
            aws_client("s3", region=s.region, endpoint_url=s.endpoint_url), s.bucket
        )

    @cached_property
    def queue(self) -> Queue | None:
        s = self.settings
        if s.queue_url is None:
            return None
        from api.adapters import SqsQueue, aws_client

        return SqsQueue(
            aws_client("sqs", region=s.region, endpoint_url=s.endpoint_url), s.queue_url
        )
