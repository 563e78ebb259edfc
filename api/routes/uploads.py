"""/uploads: presigned POSTs and multipart uploads straight to S3, never through the API.

The server chooses every key (``<raw prefix><uuid>/<safe file name>``), so a client can neither
overwrite another upload nor write outside the raw prefix. Small files: one presigned POST
whose policy S3 enforces (exact key, Content-Type, 1..max bytes). Big files: a multipart upload
whose parts the client PUTs in parallel and can retry one by one; the total size is checked
when it completes, since a part URL cannot carry a size limit.

A caller with a bearer token is the upload's uploader: its subject goes into the object's
metadata (signed into the POST policy, set on the multipart upload), and the processor puts it
on the image's record, so that the uploader may later delete or reprocess the image.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import CallerDep, SettingsDep, StoreDep
from api.problems import BadRequest, NotFound, UploadTooLarge, problem_responses
from api.schemas import (
    MAX_NAME_CHARS,
    CompleteRequest,
    MultipartStart,
    MultipartUpload,
    PartUrl,
    PartUrls,
    PartUrlsRequest,
    PresignedPost,
    UploadComplete,
    UploadRequest,
    safe_filename,
)
from api.settings import S3_MAX_PART_BYTES, S3_MAX_PARTS, ApiSettings, MiB
from processor.core.config import check_bytes
from processor.core.errors import ImageTooLarge, InvalidParts, UploadNotFound
from processor.core.keys import image_id

router = APIRouter(prefix="/uploads", tags=["uploads"])

MAX_PARTS_PER_REQUEST = 100
# S3 upload ids are URL-safe tokens; anything else is refused before reaching S3.
UploadId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9._~=+-]{1,1024}$", description="from POST /uploads/multipart")
]


def new_key(raw_prefix: str, filename: str) -> str:
    return f"{raw_prefix}{uuid.uuid4().hex}/{safe_filename(filename)}"


def check_key(settings: ApiSettings, key: str) -> str:
    """Only keys this API hands out may be used: no writes anywhere else in the bucket."""
    pattern = (
        rf"{re.escape(settings.raw_prefix)}[0-9a-f]{{32}}/[A-Za-z0-9._-]{{1,{MAX_NAME_CHARS}}}"
    )
    if not re.fullmatch(pattern, key):
        raise BadRequest("key is not an upload key handed out by this API")
    return key


def plan_parts(size: int, preferred_part_bytes: int) -> tuple[int, int]:
    """(part size, part count) for ``size`` bytes: the preferred size, made larger (in whole
    MiB) only when the file would otherwise need more than S3's 10,000 parts."""
    part = max(preferred_part_bytes, math.ceil(size / S3_MAX_PARTS))
    part = math.ceil(part / MiB) * MiB
    if part > S3_MAX_PART_BYTES:
        raise UploadTooLarge("larger than a multipart upload can hold")
    return part, math.ceil(size / part)


def _check_size(settings: ApiSettings, size: int | None, *, then: str = "") -> None:
    """The processor's byte-limit rule and message (processor/core/config.py), as a 413."""
    if size is None:
        return
    try:
        check_bytes(size, settings.max_upload_bytes)
    except ImageTooLarge as e:
        raise UploadTooLarge(e.message + then) from e


@router.post(
    "",
    summary="Presigned POST for one upload",
    description="POST a multipart/form-data form to `url` with every entry of `fields`, then the "
    "`file` field last. S3 refuses a different key, Content-Type or a size outside 1.."
    "`max_bytes`. Once stored, the image appears under `GET /images/{id}`.",
    responses=problem_responses(400, 413, 422, 503),
)
def create_upload(
    body: UploadRequest, settings: SettingsDep, store: StoreDep, caller: CallerDep
) -> PresignedPost:
    _check_size(settings, body.size)
    key = new_key(settings.raw_prefix, body.filename)
    form = store.presigned_post(
        settings.bucket,
        key,
        content_type=body.content_type,
        max_bytes=settings.max_upload_bytes,
        expires_in=settings.presign_expires_seconds,
        uploader=caller.subject,
    )
    return PresignedPost(
        id=image_id(settings.bucket, key),
        key=key,
        url=form.url,
        fields=form.fields,
        max_bytes=settings.max_upload_bytes,
        expires_in=settings.presign_expires_seconds,
    )


@router.post(
    "/multipart",
    status_code=201,
    summary="Start a multipart upload (big files)",
    description="Then ask for part URLs, PUT each part (in parallel, retrying any that fail), "
    "keep each part's ETag response header, and complete.",
    responses=problem_responses(400, 413, 422, 503),
)
def start_multipart(
    body: MultipartStart, settings: SettingsDep, store: StoreDep, caller: CallerDep
) -> MultipartUpload:
    _check_size(settings, body.size)
    part_size, part_count = plan_parts(body.size, settings.multipart_part_bytes)
    key = new_key(settings.raw_prefix, body.filename)
    upload_id = store.start_multipart(
        settings.bucket, key, content_type=body.content_type, uploader=caller.subject
    )
    return MultipartUpload(
        id=image_id(settings.bucket, key),
        key=key,
        upload_id=upload_id,
        part_size=part_size,
        part_count=part_count,
        max_parts_per_request=MAX_PARTS_PER_REQUEST,
    )


@router.post(
    "/multipart/{upload_id}/parts",
    summary="Presigned PUT URLs for a batch of parts",
    responses=problem_responses(400, 422, 503),
)
def create_part_urls(
    upload_id: UploadId, body: PartUrlsRequest, settings: SettingsDep, store: StoreDep
) -> PartUrls:
    check_key(settings, body.key)
    numbers = body.part_numbers
    if len(set(numbers)) != len(numbers):
        raise BadRequest("part numbers must be distinct")
    _check_size(settings, body.size)
    # The same plan as at the start: each URL signs its part's exact Content-Length, and no
    # part past the planned count gets a URL, so S3 itself refuses any other body.
    part_size, count = plan_parts(body.size, settings.multipart_part_bytes)
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise BadRequest(
            f"part {beyond[0]} is beyond the {count} parts planned for {body.size} bytes"
        )
    expires = settings.presign_expires_seconds
    parts = []
    for n in numbers:
        length = part_size if n < count else body.size - (count - 1) * part_size
        url = store.part_url(
            settings.bucket, body.key, upload_id, n, expires_in=expires, content_length=length
        )
        parts.append(PartUrl(part_number=n, url=url, bytes=length))
    return PartUrls(parts=parts, expires_in=expires)


@router.post(
    "/multipart/{upload_id}/complete",
    summary="Join the uploaded parts into the image",
    responses=problem_responses(400, 404, 413, 422, 503),
)
def complete_multipart(
    upload_id: UploadId, body: CompleteRequest, settings: SettingsDep, store: StoreDep
) -> UploadComplete:
    key = check_key(settings, body.key)
    parts = sorted((p.part_number, p.etag) for p in body.parts)
    if len({n for n, _ in parts}) != len(parts):
        raise BadRequest("a part number appears twice")
    try:
        uploaded = {
            p.part_number: p.size for p in store.list_parts(settings.bucket, key, upload_id)
        }
        total = sum(uploaded.get(n, 0) for n, _ in parts)
        if total > settings.max_upload_bytes:
            # Part URLs cannot limit sizes, so this is where the limit holds: refuse and free
            # the stored parts.
            store.abort_multipart(settings.bucket, key, upload_id)
            _check_size(settings, total, then="; the upload was aborted")
        etag = store.complete_multipart(settings.bucket, key, upload_id, parts)
    except UploadNotFound as e:
        raise NotFound("no such multipart upload for this key (completed or aborted?)") from e
    except InvalidParts as e:
        raise BadRequest(e.message) from e
    return UploadComplete(id=image_id(settings.bucket, key), key=key, bytes=total, etag=etag)


@router.delete(
    "/multipart/{upload_id}",
    status_code=204,
    summary="Abort a multipart upload and free its parts",
    response_class=Response,
    responses=problem_responses(400, 404, 422, 503),
)
def abort_multipart(
    upload_id: UploadId,
    key: Annotated[str, Query(min_length=1, max_length=1024, description="the upload's key")],
    settings: SettingsDep,
    store: StoreDep,
) -> Response:
    check_key(settings, key)
    try:
        store.abort_multipart(settings.bucket, key, upload_id)
    except UploadNotFound as e:
        raise NotFound("no such multipart upload for this key") from e
    return Response(status_code=204)
