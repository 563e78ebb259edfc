"""S3ObjectStore: the one S3 adapter. The processor's ObjectStore port (read a source, write
renditions), the API's UploadStore port (presigned uploads, multipart, deletes) and the local
CDN stand-in's reads, over one boto3 client. Every method names its bucket."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.client import HTTPException
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError

from processor.aws.errors import translate, translated
from processor.core.errors import TransientError
from processor.core.keys import UPLOADER_METADATA, decode_uploader, encode_uploader
from processor.core.ports import (
    ObjectVersion,
    PresignedForm,
    SourceObject,
    StoredObject,
    UploadedPart,
)

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
                uploader=decode_uploader((response.get("Metadata") or {}).get(UPLOADER_METADATA)),
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
        self._delete_objects(bucket, [{"Key": k} for k in keys], "keys")

    def _delete_objects(self, bucket: str, objects: list[dict[str, str]], what: str) -> None:
        for start in range(0, len(objects), _DELETE_BATCH):
            batch = objects[start : start + _DELETE_BATCH]
            with translated(f"DeleteObjects s3://{bucket} ({len(batch)} {what})"):
                response = self._client.delete_objects(
                    Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                )
            # DeleteObjects answers 200 even when some keys failed; each one says why.
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise TransientError(
                    f"DeleteObjects s3://{bucket}: {len(errors)} of {len(batch)} {what} failed, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def list_versions(self, bucket: str, prefix: str) -> list[ObjectVersion]:
        versions: list[ObjectVersion] = []
        with translated(f"ListObjectVersions s3://{bucket}/{prefix}"):
            paginator = self._client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for entry, marker in [
                    *((v, False) for v in page.get("Versions", [])),
                    *((m, True) for m in page.get("DeleteMarkers", [])),
                ]:
                    versions.append(
                        ObjectVersion(
                            key=str(entry["Key"]),
                            version_id=str(entry.get("VersionId") or "null"),
                            is_latest=bool(entry.get("IsLatest")),
                            is_delete_marker=marker,
                        )
                    )
        return versions

    def delete_versions(self, bucket: str, versions: Sequence[ObjectVersion]) -> None:
        self._delete_objects(
            bucket, [{"Key": v.key, "VersionId": v.version_id} for v in versions], "versions"
        )

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix`` (tests and ops; the service never lists)."""
        keys: list[str] = []
        with translated(f"ListObjectsV2 s3://{bucket}/{prefix}"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def head(self, bucket: str, key: str) -> StoredObject:
        """An object's headers; SourceMissing if it is not there."""
        with translated(f"HeadObject s3://{bucket}/{key}"):
            response = self._client.head_object(Bucket=bucket, Key=key)
        return _stored(response, body=None)

    def read(self, bucket: str, key: str, *, byte_range: str | None = None) -> StoredObject:
        """An object and its headers, its body streamed; ``byte_range`` an HTTP Range value.

        SourceMissing if it is not there, RangeNotSatisfiable if the range is outside it.
        """
        request: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if byte_range:
            request["Range"] = byte_range
        with translated(f"GetObject s3://{bucket}/{key}"):
            response = self._client.get_object(**request)
        return _stored(response, body=response["Body"])

    # --- uploads (the API) ---------------------------------------------------------------

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
        # boto3 adds the bucket and exact-key conditions itself; the form must also send this
        # exact Content-Type (and uploader metadata) and a body of 1..max_bytes bytes, or S3
        # refuses it.
        fields = {"Content-Type": content_type}
        if uploader is not None:
            fields[f"x-amz-meta-{UPLOADER_METADATA}"] = encode_uploader(uploader)
        conditions: list[Any] = [{k: v} for k, v in fields.items()]
        conditions.append(["content-length-range", 1, max_bytes])
        with translated(f"presign POST s3://{bucket}/{key}"):
            post: dict[str, Any] = self._client.generate_presigned_post(
                Bucket=bucket,
                Key=key,
                Fields=fields,
                Conditions=conditions,
                ExpiresIn=expires_in,
            )
        return PresignedForm(
            url=str(post["url"]), fields={k: str(v) for k, v in post["fields"].items()}
        )

    def start_multipart(
        self, bucket: str, key: str, *, content_type: str, uploader: str | None = None
    ) -> str:
        metadata = {} if uploader is None else {UPLOADER_METADATA: encode_uploader(uploader)}
        with translated(f"CreateMultipartUpload s3://{bucket}/{key}"):
            out = self._client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata
            )
        return str(out["UploadId"])

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
        # Content-Length is a signed header of the URL: S3 refuses a body of any other size.
        with translated(f"presign UploadPart s3://{bucket}/{key}"):
            url: str = self._client.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": part_number,
                    "ContentLength": content_length,
                },
                ExpiresIn=expires_in,
            )
        return url

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        parts: list[UploadedPart] = []
        with translated(f"ListParts s3://{bucket}/{key}"):
            pages = self._client.get_paginator("list_parts").paginate(
                Bucket=bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                parts.extend(
                    UploadedPart(int(p["PartNumber"]), int(p["Size"]), str(p["ETag"]))
                    for p in page.get("Parts", [])
                )
        return parts

    def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> str:
        with translated(f"CompleteMultipartUpload s3://{bucket}/{key}"):
            out = self._client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
            )
        return str(out.get("ETag", ""))

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        with translated(f"AbortMultipartUpload s3://{bucket}/{key}"):
            self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def _stored(response: dict[str, Any], *, body: Any) -> StoredObject:
    return StoredObject(
        etag=str(response.get("ETag", "")),
        size=int(response.get("ContentLength", 0)),
        content_type=response.get("ContentType"),
        cache_control=response.get("CacheControl"),
        last_modified=response.get("LastModified"),
        content_range=response.get("ContentRange"),
        body=body,
    )


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
