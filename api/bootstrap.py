"""The API's composition root: builds the adapters once per app, on first use.

Nothing here runs at import or app creation: boto3 alone costs ~250 ms to import, and a
request that needs no AWS (health, docs, an invalid request) should not pay for it. Tests
replace these through ``app.dependency_overrides`` (see api/deps.py) instead.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from api.cursor import CursorSigner

if TYPE_CHECKING:
    from api.settings import ApiSettings
    from api.tokens import TokenVerifier
    from processor.core.ports import ImageReader, Queue, UploadStore


class Services:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings

    @cached_property
    def signer(self) -> CursorSigner:
        return CursorSigner(self.settings.cursor_key)

    def _client(self, service: str) -> Any:
        from processor.aws.clients import FOR_REQUESTS, aws_client

        s = self.settings
        return aws_client(
            service, region=s.region, endpoint_url=s.endpoint_url, timeouts=FOR_REQUESTS
        )

    @cached_property
    def repo(self) -> ImageReader:
        from processor.aws.dynamo import DynamoImageRepository

        return DynamoImageRepository(
            self._client("dynamodb"), self.settings.table, self.settings.list_shards
        )

    @cached_property
    def store(self) -> UploadStore:
        from processor.aws.s3 import S3ObjectStore

        return S3ObjectStore(self._client("s3"))

    @cached_property
    def tokens(self) -> TokenVerifier | None:
        """Checks bearer tokens where no gateway has (IMGPIPE_JWT_ISSUER set)."""
        s = self.settings
        if s.jwt_issuer is None or s.auth_mode == "gateway":
            return None
        from api.tokens import TokenVerifier

        return TokenVerifier(s.jwt_issuer, s.jwt_audience)

    @cached_property
    def queue(self) -> Queue | None:
        if self.settings.queue_url is None:
            return None
        from processor.aws.sqs import SqsQueue

        return SqsQueue(self._client("sqs"), self.settings.queue_url)
