"""What the API needs besides the image records: object storage for uploads and deletes, and
the processing queue. The record store's port is processor.ports.ImageReader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from processor.errors import PipelineError


class UploadNotFound(PipelineError):
    """The multipart upload id is unknown for this key, or already completed or aborted."""

    code = "upload_not_found"


class InvalidParts(PipelineError):
    """S3 refused the part list: a part is missing, its ETag differs, or a part is too small."""

    code = "invalid_parts"


@dataclass(frozen=True)
class UploadedPart:
    part_number: int
    size: int  # bytes
    etag: str


@dataclass(frozen=True)
class PresignedForm:
    url: str
    fields: dict[str, str]


class ObjectStore(Protocol):
    """The pipeline bucket (one bucket: raw/ uploads and public/ renditions)."""

    def presigned_post(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: int
    ) -> PresignedForm: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, keys: list[str]) -> None:
        """Delete these keys; keys that do not exist are fine."""
        ...

    def start_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; returns its upload id."""
        ...

    def part_url(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str: ...

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]: ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> str:
        """Join (part number, ETag) pairs, ascending, into the object; returns its ETag."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...


class Queue(Protocol):
    def send(self, body: str) -> str:
        """Put one message on the processing queue; returns its message id."""
        ...
