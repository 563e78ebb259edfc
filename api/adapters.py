"""S3 and SQS adapters of the API. Imported on first use only: boto3 costs ~250 ms to import.

SDK errors are translated here; no botocore type leaves this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from api.ports import InvalidParts, PresignedForm, UploadedPart, UploadNotFound
from processor.errors import PipelineError, TransientError

logger = logging.getLogger(__name__)

_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalError",
}
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


def aws_client(service: str, *, region: str, endpoint_url: str | None) -> Any:
    """A client with bounded retries and timeouts (an API request must not hang on AWS)."""
    s3: dict[str, Any] = {"addressing_style": "path"} if endpoint_url else {}
    config = Config(
        region_name=region,
        signature_version="s3v4" if service == "s3" else None,
        s3=s3 or None,
        connect_timeout=2,
        read_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client(service, endpoint_url=endpoint_url, config=config)


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except ClientError as e:
        error = e.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "NoSuchUpload":
            raise UploadNotFound(f"{action}: no such multipart upload") from e
        if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}:
            raise InvalidParts(f"{action}: {error.get('Message', code)}") from e
        if code in _TRANSIENT_CODES or status >= 500:
            raise TransientError(f"{action}: {code or status}") from e
        raise PipelineError(f"{action}: {code} {error.get('Message', '')}".strip()) from e
    except BotoCoreError as e:  # connection errors, timeouts: worth retrying
        raise TransientError(f"{action}: {type(e).__name__}") from e


class S3ObjectStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def presigned_post(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: int
    ) -> PresignedForm:
        # boto3 adds the bucket and exact-key conditions itself; the form must also send this
        # exact Content-Type and a body of 1..max_bytes bytes, or S3 refuses it.
        with _translated("presign POST"):
            post: dict[str, Any] = self._s3.generate_presigned_post(
                Bucket=self._bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    {"Content-Type": content_type},
                    ["content-length-range", 1, max_bytes],
                ],
                ExpiresIn=expires_in,
            )
        return PresignedForm(
            url=str(post["url"]), fields={k: str(v) for k, v in post["fields"].items()}
        )

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with _translated("list objects"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            with _translated("delete objects"):
                result = self._s3.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = result.get("Errors", [])
            if errors:
                first = errors[0]
                raise TransientError(
                    f"delete objects: {len(errors)} failed, e.g. {first.get('Key')}: "
                    f"{first.get('Code')}"
                )

    def start_multipart(self, key: str, *, content_type: str) -> str:
        with _translated("create multipart upload"):
            out = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType=content_type
            )
        return str(out["UploadId"])

    def part_url(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str:
        with _translated("presign part"):
            url: str = self._s3.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": part_number,
                },
                ExpiresIn=expires_in,
            )
        return url

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        parts: list[UploadedPart] = []
        with _translated("list parts"):
            pages = self._s3.get_paginator("list_parts").paginate(
                Bucket=self._bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                parts.extend(
                    UploadedPart(int(p["PartNumber"]), int(p["Size"]), str(p["ETag"]))
                    for p in page.get("Parts", [])
                )
        return parts

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> str:
        with _translated("complete multipart upload"):
            out = self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
            )
        return str(out.get("ETag", ""))

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with _translated("abort multipart upload"):
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)


class SqsQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def send(self, body: str) -> str:
        with _translated("send message"):
            out = self._sqs.send_message(QueueUrl=self._url, MessageBody=body)
        return str(out["MessageId"])
