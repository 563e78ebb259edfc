"""S3ObjectStore: the ObjectStore port over a boto3 S3 client."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.client import HTTPException
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from processor.adapters.aws_errors import translate, translated
from processor.errors import TransientError
from processor.service_ports import SourceObject

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_READ_BUFFER = 1024 * 1024


class S3ObjectStore:
    def __init__(self, client: Any) -> None:
        self._client = client

    @contextmanager
    def open(self, bucket: str, key: str, *, etag: str | None = None) -> Iterator[SourceObject]:
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            # Exactly the bytes the event announced: a newer upload answers 412 (StaleEvent).
            request["IfMatch"] = f'"{etag}"'
        with translated(f"GetObject s3://{bucket}/{key}"):
            response = self._client.get_object(**request)
        body = response["Body"]
        raw = _TranslatingBody(body, f"reading s3://{bucket}/{key}")
        try:
            yield SourceObject(
                # Streamed in 1 MiB reads: the engine spools it to disk while hashing, so a
                # 300 MB upload never needs 300 MB of memory.
                stream=io.BufferedReader(raw, buffer_size=_READ_BUFFER),
                size=int(response.get("ContentLength", 0)),
                etag=str(response.get("ETag", "")).strip('"') or None,
            )
        finally:
            body.close()

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) == 404:
                return False
            raise translate(e, f"HeadObject s3://{bucket}/{key}") from e
        except BotoCoreError as e:
            raise translate(e, f"HeadObject s3://{bucket}/{key}") from e
        return True

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str
    ) -> None:
        with translated(f"PutObject s3://{bucket}/{key}"):
            self._client.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
            )

    def copy(
        self,
        bucket: str,
        source_key: str,
        key: str,
        *,
        content_type: str,
        cache_control: str,
    ) -> None:
        with translated(f"CopyObject s3://{bucket}/{source_key} -> {key}"):
            self._client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": source_key},
                MetadataDirective="REPLACE",
                ContentType=content_type,
                CacheControl=cache_control,
            )

    def delete(self, bucket: str, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            with translated(f"DeleteObjects s3://{bucket} ({len(batch)} keys)"):
                response = self._client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            # DeleteObjects answers 200 even when some keys failed; each one says why.
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise TransientError(
                    f"DeleteObjects s3://{bucket}: {len(errors)} of {len(batch)} keys failed, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix`` (tests and ops; the service never lists)."""
        keys: list[str] = []
        with translated(f"ListObjectsV2 s3://{bucket}/{prefix}"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys


class _TranslatingBody(io.RawIOBase):
    """A botocore StreamingBody whose read failures (timeouts, resets, short reads) surface
    as TransientError: the stream is read inside the engine, far from any adapter code."""

    def __init__(self, body: Any, what: str) -> None:
        super().__init__()
        self._body = body
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (BotoCoreError, HTTPError, HTTPException, OSError) as e:
            raise TransientError(f"{self._what}: {type(e).__name__}: {e}") from e
        view[: len(data)] = data
        return len(data)
