"""In-memory stand-ins for the API's ports: the same behaviour, no AWS."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from processor.core.errors import InvalidParts, UploadNotFound
from processor.core.ports import PresignedForm, UploadedPart


@dataclass
class FakeMultipart:
    key: str
    content_type: str
    uploader: str | None = None
    parts: dict[int, bytes] = field(default_factory=dict)


class FakeStore:
    """UploadStore over a dict of key -> bytes (one bucket)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, FakeMultipart] = {}
        self._ids = itertools.count(1)

    def presigned_post(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        max_bytes: int,
        expires_in: int,
        uploader: str | None = None,
    ) -> PresignedForm:
        policy = json.dumps(
            {"key": key, "ct": content_type, "max": max_bytes, "exp": expires_in, "by": uploader}
        )
        return PresignedForm(url="https://bucket.example/", fields={"key": key, "policy": policy})

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def delete(self, bucket: str, keys: Sequence[str]) -> None:
        for k in keys:
            self.objects.pop(k, None)

    def start_multipart(
        self, bucket: str, key: str, *, content_type: str, uploader: str | None = None
    ) -> str:
        upload_id = f"upload-{next(self._ids)}"
        self.uploads[upload_id] = FakeMultipart(key, content_type, uploader)
        return upload_id

    def part_url(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int,
        content_length: int,
    ) -> str:
        return (
            f"https://bucket.example/{key}?uploadId={upload_id}&partNumber={part_number}"
            f"&length={content_length}"
        )

    def _upload(self, key: str, upload_id: str) -> FakeMultipart:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise UploadNotFound("no such upload")
        return upload

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        upload = self._upload(key, upload_id)
        return [UploadedPart(n, len(b), f'"etag-{n}"') for n, b in sorted(upload.parts.items())]

    def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> str:
        upload = self._upload(key, upload_id)
        for n, etag in parts:
            if n not in upload.parts or etag != f'"etag-{n}"':
                raise InvalidParts(f"part {n} is missing or its ETag differs")
        self.objects[key] = b"".join(upload.parts[n] for n, _ in parts)
        del self.uploads[upload_id]
        return '"joined"'

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self._upload(key, upload_id)
        del self.uploads[upload_id]


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, body: str) -> str:
        self.sent.append(body)
        return f"msg-{len(self.sent)}"
