"""What the API returns and accepts. Built from processor.core.record.ImageRecord, never from items.

The image itself (``ImagePublic`` and how a record becomes one) is processor/core/view.py: the
completion events carry the same view.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from processor.core.formats import ACCEPTED_CONTENT_TYPES
from processor.core.view import EXAMPLE_ID as _EXAMPLE_ID
from processor.core.view import (
    IMAGE_ID_PATTERN,
    ErrorPublic,
    ImagePublic,
    RenditionPublic,
    StillReasonPublic,
    fallback_src,
    image_public,
    srcsets,
)

__all__ = [
    "IMAGE_ID_PATTERN",
    "ErrorPublic",
    "ImagePublic",
    "RenditionPublic",
    "StillReasonPublic",
    "fallback_src",
    "image_public",
    "srcsets",
]


class ImagesPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [], "count": 0, "next": None}]}
    )

    data: list[ImagePublic]
    count: int = Field(description="number of images in this page")
    next: str | None = Field(
        None, description="opaque cursor of the next page (pass as ?cursor=); null on the last"
    )


# --- uploads -----------------------------------------------------------------------------

# Exactly what this build decodes (processor/core/formats.py); an enum in the OpenAPI schema.
if TYPE_CHECKING:
    ImageContentType = str
else:
    ImageContentType = Literal[ACCEPTED_CONTENT_TYPES]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 100


def safe_filename(name: str) -> str:
    """A client's file name reduced to a harmless S3 key segment ('upload' if nothing is left).

    Drops directories (either slash), accents and anything outside [A-Za-z0-9._-]; never starts
    with a dot; keeps the extension when the name is cut to length.
    """
    base = re.split(r"[\\/]", name)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    stem, dot, ext = ascii_name.rpartition(".")
    if not dot:
        stem, ext = ext, ""
    ext = _UNSAFE.sub("", ext)[:16]
    stem = _UNSAFE.sub("-", stem).strip(".-_")
    stem = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip(".-_") or "upload"
    return f"{stem}.{ext}" if ext else stem


class _FileInfo(BaseModel):
    filename: str = Field(min_length=1, max_length=1024, description="the client's file name")
    content_type: ImageContentType = Field(description="sent as the object's Content-Type")


class UploadRequest(_FileInfo):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"filename": "cat.jpg", "content_type": "image/jpeg", "size": 3145728}]
        },
    )

    size: int | None = Field(None, ge=1, description="bytes, if known: refused early when too big")


class PresignedPost(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXAMPLE_ID,
                    "key": "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/cat.jpg",
                    "url": "https://imgpipe-bucket.s3.amazonaws.com/",
                    "fields": {
                        "key": "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/cat.jpg",
                        "Content-Type": "image/jpeg",
                        "x-amz-algorithm": "AWS4-HMAC-SHA256",
                        "x-amz-credential": "AKIA.../20240501/us-east-1/s3/aws4_request",
                        "x-amz-date": "20240501T120000Z",
                        "policy": "eyJleHBpcmF0aW9uIjog...",
                        "x-amz-signature": "9f2c...",
                    },
                    "max_bytes": 209715200,
                    "expires_in": 3600,
                }
            ]
        }
    )

    id: str = Field(description="the image id the upload will have: poll GET /images/{id}")
    key: str = Field(description="server-chosen object key under the raw prefix")
    url: str = Field(description="POST a multipart/form-data form here")
    fields: dict[str, str] = Field(description="form fields to send before the `file` field")
    max_bytes: int
    expires_in: int = Field(description="seconds")


class MultipartStart(_FileInfo):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"filename": "panorama.tif", "content_type": "image/tiff", "size": 3221225472}
            ]
        },
    )

    size: int = Field(ge=1, description="total bytes of the file")


class MultipartUpload(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXAMPLE_ID,
                    "key": "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/panorama.tif",
                    "upload_id": "VXBsb2FkIElEIGZvciBwYW5vcmFtYS50aWY",
                    "part_size": 16777216,
                    "part_count": 192,
                    "max_parts_per_request": 100,
                }
            ]
        }
    )

    id: str
    key: str
    upload_id: str
    part_size: int = Field(description="bytes of every part but the last")
    part_count: int
    max_parts_per_request: int = Field(description="part URLs one request may ask for")


class PartUrlsRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/panorama.tif",
                    "size": 52428800,
                    "part_numbers": [1, 2],
                }
            ]
        },
    )

    key: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=1, description="the file's bytes, as given when the upload started")
    part_numbers: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        min_length=1, max_length=100, description="distinct part numbers, 1 to 10,000"
    )


class PartUrl(BaseModel):
    part_number: int
    url: str = Field(description="PUT the part's bytes here; keep the ETag response header")
    bytes: int = Field(description="the part's exact size: the URL signs this Content-Length")


class PartUrls(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "parts": [
                        {
                            "part_number": 1,
                            "url": "https://imgpipe-bucket.s3.amazonaws.com/raw/...?partNumber=1&"
                            "uploadId=...&X-Amz-Signature=...",
                        }
                    ],
                    "expires_in": 3600,
                }
            ]
        }
    )

    parts: list[PartUrl]
    expires_in: int = Field(description="seconds")


class CompletedPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=128, description="ETag header of the part's PUT")


class CompleteRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/panorama.tif",
                    "parts": [{"part_number": 1, "etag": '"b54357faf0632cce46e942fa68356b38"'}],
                }
            ]
        },
    )

    key: str = Field(min_length=1, max_length=1024)
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)


class UploadComplete(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXAMPLE_ID,
                    "key": "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/panorama.tif",
                    "bytes": 3221225472,
                    "etag": '"17fbc0a106abbb6f381aac6e331f2a19-192"',
                }
            ]
        }
    )

    id: str
    key: str
    bytes: int
    etag: str


# --- writes on images --------------------------------------------------------------------


class DeleteAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXAMPLE_ID,
                    "deleted_keys": [
                        "raw/3f1c0e8a9b7d4c2e8f6a5b4c3d2e1f00/cat.jpg",
                        f"public/thumbs/{_EXAMPLE_ID}-1a2b3c4d5e.webp",
                    ],
                }
            ]
        }
    )

    id: str
    deleted_keys: list[str] = Field(description="objects removed; the record is marked shortly")


class ReprocessAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": _EXAMPLE_ID, "message_id": "5fea7756-0ea4-451a"}]}
    )

    id: str
    message_id: str = Field(description="SQS message id of the queued request")


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = "ok"
