"""/images: read image records (public by default); delete and reprocess (protected)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response

from api.cursor import MAX_TOKEN_CHARS
from api.deps import (
    API_KEY_HEADER,
    Caller,
    CallerDep,
    QueueDep,
    RepoDep,
    SettingsDep,
    SignerDep,
    StoreDep,
)
from api.problems import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidCursorProblem,
    NotFound,
    Unauthorized,
    problem_responses,
)
from api.schemas import (
    IMAGE_ID_PATTERN,
    DeleteAccepted,
    ImagePublic,
    ImagesPublic,
    ReprocessAccepted,
    image_public,
)
from processor.core.errors import InvalidCursor
from processor.core.keys import rendition_folder, rendition_prefix
from processor.core.messages import forget_message, reprocess_message
from processor.core.record import ImageRecord, ScoreRange, Status

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Revalidate every time (cheap with If-None-Match): a record changes while it is processed.
CACHE_CONTROL = "no-cache"
# What a caller with credentials reads is for that caller only: no shared cache may keep it.
PRIVATE_CACHE_CONTROL = "private, no-cache"
# A read's answer depends on these request headers: a cache keys it on them.
VARY = f"Authorization, {API_KEY_HEADER}"

router = APIRouter(prefix="/images", tags=["images"])
write_router = APIRouter(prefix="/images", tags=["images"])

ImageId = Annotated[
    str, Path(pattern=IMAGE_ID_PATTERN, description="26 lowercase base32 characters")
]


def _cursor_context(
    status: Status | None, uploader: str | None = None, scores: ScoreRange | None = None
) -> str:
    # A cursor is only valid for the listing that made it: same filter, same order.
    mine = f":by:{uploader}" if uploader is not None else ""
    scored = f":score:{scores.min_score}:{scores.max_score}" if scores is not None else ""
    return f"images:newest:{status.value if status else 'live'}{mine}{scored}"


def _score_range(min_score: float | None, max_score: float | None) -> ScoreRange | None:
    if min_score is None and max_score is None:
        return None
    if min_score is not None and max_score is not None and min_score > max_score:
        raise BadRequest(f"min_score ({min_score:g}) is above max_score ({max_score:g})")
    return ScoreRange(min_score=min_score, max_score=max_score)


def _load(repo: RepoDep, image_id: str, caller: Caller) -> ImageRecord:
    record = repo.get(image_id)
    # An image that is not done is its uploader's (and admins') business only: to anyone
    # else it does not exist yet (or any more), which tells them nothing about uploads.
    if record is None or (
        record.status is not Status.done and not caller.may_manage(record.uploader)
    ):
        # The record is written when processing starts, a moment after the upload: a client
        # that just uploaded should retry, not conclude the image is gone.
        raise NotFound(
            f"no image with id {image_id!r}: if it was uploaded just now, it is not processed "
            "yet; try again in a second",
            headers={"Retry-After": "1"},
        )
    return record


def _listing(status: Status | None, mine: bool, caller: Caller) -> tuple[Status | None, str | None]:
    """(status, uploader) of what a caller may list.

    An admin lists anything; ``mine=true`` the caller's own uploads in any state; anyone
    else done images (everyone's, as the public sees them), and other states only of their
    own uploads: a token's subject gets its own, a caller with no subject nothing.
    """
    if mine:
        if caller.subject is None:
            raise BadRequest("mine=true needs a bearer token: only a token names an uploader")
        return status, caller.subject
    if caller.admin:
        return status, None
    if status in (None, Status.done):
        return Status.done, None
    if caller.subject is not None:
        return status, caller.subject
    if caller.writer:
        raise Forbidden(
            f"listing {status} images needs the admin scope, or a token whose subject uploaded them"
        )
    raise Unauthorized(f"listing {status} images needs write authorisation")


def _cache_headers(caller: Caller) -> dict[str, str]:
    """A view that depends on credentials is private to their holder."""
    private = caller.writer or caller.subject is not None
    return {"Cache-Control": PRIVATE_CACHE_CONTROL if private else CACHE_CONTROL, "Vary": VARY}


def _changeable(repo: RepoDep, image_id: str, caller: Caller) -> ImageRecord:
    """The record, if this caller may delete or reprocess it: its uploader, or an admin."""
    record = _load(repo, image_id, caller)
    if not caller.may_manage(record.uploader):
        raise Forbidden("only the image's uploader or an admin may change it")
    return record


@router.get(
    "",
    summary="List images, newest first",
    description="An admin (the key, or a token with the admin scope) lists images in any state "
    "with their `source_key`, `uploader` and `error`. Anyone else lists `done` images, and "
    "those private fields only for their own uploads; a token lists its own uploads in "
    "another state (`status=failed`, or `mine=true`). Without credentials another status is "
    "refused (401); with a token that names no subject, too (403).",
    responses=problem_responses(400, 401, 403, 422, 503),
)
def read_images(
    repo: RepoDep,
    settings: SettingsDep,
    signer: SignerDep,
    caller: CallerDep,
    response: Response,
    status: Annotated[
        Status | None,
        Query(description="only images in this state; default: all but deleted (admins)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_TOKEN_CHARS, description="the `next` value of the previous page"),
    ] = None,
    mine: Annotated[
        bool,
        Query(description="only the images this caller uploaded (needs a bearer token)"),
    ] = False,
    min_score: Annotated[
        float | None,
        Query(
            le=100,
            description="only images whose every scored rendition reaches this SSIMULACRA2 "
            "score (images with no score are left out)",
        ),
    ] = None,
    max_score: Annotated[
        float | None,
        Query(
            le=100,
            description="only images with a rendition scoring at or below this: the worst "
            "renditions (images with no score are left out); a filtered page may hold fewer "
            "than `limit` images, follow `next`",
        ),
    ] = None,
) -> ImagesPublic:
    status, uploader = _listing(status, mine, caller)
    scores = _score_range(min_score, max_score)
    context = _cursor_context(status, uploader, scores)
    position = None
    if cursor:
        try:
            position = signer.decode(cursor, context=context)
        except InvalidCursor as e:
            raise InvalidCursorProblem(str(e)) from e
    page = repo.list_images(
        status=status, limit=limit, position=position, uploader=uploader, scores=scores
    )
    data = [
        image_public(r, settings.cdn_base_url, private=caller.may_manage(r.uploader))
        for r in page.items
    ]
    next_token = signer.encode(page.next_position, context=context) if page.next_position else None
    response.headers.update(_cache_headers(caller))
    return ImagesPublic(data=data, count=len(data), next=next_token)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires: W/ prefixes are ignored."""
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


_ETAG_HEADER: dict[str, Any] = {
    "ETag": {"description": "version of this representation", "schema": {"type": "string"}}
}


@router.get(
    "/{image_id}",
    summary="One image, with rendition URLs and srcsets",
    response_model=ImagePublic,
    responses={
        200: {"headers": _ETAG_HEADER},
        304: {"description": "Not Modified: the If-None-Match ETag still matches"},
        **problem_responses(404, 422, 503),
    },
)
def read_image(
    image_id: ImageId,
    repo: RepoDep,
    settings: SettingsDep,
    caller: CallerDep,
    if_none_match: Annotated[
        str | None, Header(description="an ETag from an earlier response")
    ] = None,
) -> Response:
    record = _load(repo, image_id, caller)
    view = image_public(
        record,
        settings.cdn_base_url,
        private=caller.may_manage(record.uploader),
        on_demand=settings.on_demand,
    )
    body = view.model_dump_json().encode()
    etag = _etag(body)
    headers = {"ETag": etag, **_cache_headers(caller)}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def read_in_place(record: ImageRecord, bucket: str, raw_prefix: str) -> bool:
    """Whether the image's original was backfilled where it lies (docs/backfill.md): then it
    is not the pipeline's to delete, only its renditions and record are."""
    return (record.bucket or bucket) != bucket or not record.source_key.startswith(raw_prefix)


def keys_to_delete(
    record: ImageRecord, public_prefix: str, *, original: bool = True
) -> tuple[list[str], list[str]]:
    """(exact keys, prefixes to list) that hold this image's files; ``original`` False leaves
    the original out (one read in place).

    Besides the renditions the record names, every older content version of them lives next
    to them as ``<folder>/<id>-<version>.<ext>``: ids have a fixed length, so listing
    ``<public>/<folder>/<id>`` finds exactly this image's files and no other image's.
    """
    keys = [k for k in (record.source_key,) if k and original]  # "" on a tombstone
    keys += [public_prefix + r.key for r in record.renditions]
    folders = sorted({f for r in record.renditions if (f := rendition_folder(r.key))})
    prefixes = [public_prefix + rendition_prefix(folder, record.id) for folder in folders]
    return keys, prefixes


@write_router.delete(
    "/{image_id}",
    status_code=202,
    summary="Delete an image's source and renditions",
    description="Removes the uploaded original and every rendition from the bucket. The record "
    "is marked `deleted` by the processor when S3 reports the removal. An original that was "
    "backfilled where it lies stays there: its renditions are removed and the processor is "
    "asked to mark the record deleted.",
    responses=problem_responses(403, 404, 422, 503),
)
def delete_image(
    image_id: ImageId,
    repo: RepoDep,
    settings: SettingsDep,
    store: StoreDep,
    queue: QueueDep,
    caller: CallerDep,
) -> DeleteAccepted:
    record = _changeable(repo, image_id, caller)
    in_place = read_in_place(record, settings.bucket, settings.raw_prefix)
    keys, prefixes = keys_to_delete(record, settings.public_prefix, original=not in_place)
    for prefix in prefixes:
        keys.extend(store.list_keys(settings.bucket, prefix))
    unique = sorted(set(keys))
    store.delete(settings.bucket, unique)
    if in_place and record.status is not Status.deleted:
        # No S3 event will say it: the processor hears of the deletion from us.
        queue.send(forget_message(record.bucket or settings.bucket, record.source_key))
    return DeleteAccepted(id=record.id, deleted_keys=unique)


@write_router.post(
    "/{image_id}/reprocess",
    status_code=202,
    summary="Queue an image to be processed again",
    description="After a rendition config change or a fix: the processor derives the image "
    "again from its original.",
    responses=problem_responses(403, 404, 409, 422, 503),
)
def reprocess_image(
    image_id: ImageId, repo: RepoDep, settings: SettingsDep, queue: QueueDep, caller: CallerDep
) -> ReprocessAccepted:
    record = _changeable(repo, image_id, caller)
    if record.status is Status.deleted:
        raise Conflict("the image is deleted: its original is gone")
    message_id = queue.send(reprocess_message(record.bucket or settings.bucket, record.source_key))
    return ReprocessAccepted(id=record.id, message_id=message_id)
