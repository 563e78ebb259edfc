"""Routes the local stack adds to the API app: a CloudFront stand-in and the gallery.

In AWS, CloudFront serves ``https://<cdn>/<rendition key>`` from the bucket's public prefix
(``OriginPath: /public``). Locally the API's own address is the CDN base URL, and these
routes do the same: ``GET /thumbs/<file>`` streams ``<public prefix>thumbs/<file>`` from the
bucket with the headers production sends (the object's immutable Cache-Control, ETag,
Last-Modified), answers ``If-None-Match`` with 304 and ``Range`` with 206.

Like CloudFront's edges, it keeps what it served (``EdgeCache``): a rendition once fetched is
served from memory, even after the object is deleted, until an invalidation on the embedded
AWS's distribution names its path. So a test that sees a deleted image's rendition go away
proves that the processor invalidated it, as it must for CloudFront.

The gallery (``/``) is plain HTML, CSS and JavaScript from ``gallery/`` beside this file: no
build step.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

from api.problems import ApiProblem, NotFound
from api.settings import ApiSettings
from processor.core.errors import RangeNotSatisfiable, SourceMissing
from processor.core.formats import gallery_manifest
from processor.core.ports import IMMUTABLE, StoredObject

if TYPE_CHECKING:
    from processor.aws.s3 import S3ObjectStore

log = logging.getLogger(__name__)

GALLERY = Path(__file__).resolve().parent / "gallery"
GALLERY_ASSETS = {"gallery.css": "text/css", "gallery.js": "text/javascript"}
TOKEN_PATH = "/local/token"  # the gallery's sign-in token
CHUNK_BYTES = 64 * 1024
CDN_CONNECTIONS = 40  # uvicorn's default thread pool: one connection to S3 per worker thread
# CloudFront's response headers policy (infra/template.yaml) adds these to every rendition.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# A rendition file name: "<id>-<version>.<ext>". Nothing else is ever served.
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeUnsatisfiable(ApiProblem):
    status, code = 416, "range_not_satisfiable"


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires: W/ prefixes are ignored."""
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


def single_range(header: str | None) -> str | None:
    """A Range header S3 can answer (one ``bytes=`` range), or None to send the whole file.

    Several ranges, or a unit other than bytes, are ignored (RFC 9110 lets a server answer
    200 with the full content instead).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    start, end = match.groups()
    if start and end and int(end) < int(start):
        return None
    return header.strip()


def _common_headers(obj: StoredObject) -> dict[str, str]:
    headers = {
        "ETag": obj.etag,
        # The processor stores the immutable policy on every rendition; CloudFront passes it on.
        "Cache-Control": obj.cache_control or IMMUTABLE,
        "Accept-Ranges": "bytes",
        **SECURITY_HEADERS,
    }
    modified = obj.last_modified
    if modified is not None:
        headers["Last-Modified"] = modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers


def _stream(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def render_formats(page: str) -> str:
    """The accepted formats into the gallery page: picker, hint, and the JSON its script reads."""
    manifest = gallery_manifest()
    # "</" cannot close the <script> element early: JSON allows "<\/" for "</".
    data = json.dumps(manifest, sort_keys=True).replace("</", "<\\/")
    return (
        page.replace("{{FORMATS}}", data)
        .replace("{{ACCEPT}}", html.escape(str(manifest["accept"]), quote=True))
        .replace("{{LABELS}}", html.escape(str(manifest["labels"])))
    )


@dataclass(frozen=True)
class Cached:
    obj: StoredObject  # headers as the origin sent them (body None)
    data: bytes


class EdgeCache:
    """What an edge keeps: bounded (bytes), least recently used out first, and emptied of
    every path an invalidation of ``distribution_id`` names (exact, or a trailing ``*``)."""

    def __init__(
        self,
        cloudfront: Any,
        distribution_id: str,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        max_object_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._cloudfront = cloudfront
        self.distribution_id = distribution_id
        self.max_bytes = max_bytes
        self.max_object_bytes = max_object_bytes
        self._entries: OrderedDict[str, Cached] = OrderedDict()
        self._bytes = 0
        self._seen: set[str] = set()  # invalidation ids already applied
        self._lock = threading.Lock()

    def get(self, path: str) -> Cached | None:
        self._sync()
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                self._entries.move_to_end(path)
            return entry

    def put(self, path: str, obj: StoredObject, data: bytes) -> None:
        if len(data) > self.max_object_bytes:
            return
        with self._lock:
            self._drop(path)
            self._entries[path] = Cached(replace(obj, body=None), data)
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._entries:
                self._drop(next(iter(self._entries)))

    def _drop(self, path: str) -> None:
        entry = self._entries.pop(path, None)
        if entry is not None:
            self._bytes -= len(entry.data)

    def _sync(self) -> None:
        """Apply the invalidations created since the last look (one List call when none)."""
        paths: list[str] = []
        pages = self._cloudfront.get_paginator("list_invalidations").paginate(
            DistributionId=self.distribution_id
        )
        for page in pages:
            for item in page.get("InvalidationList", {}).get("Items", []):
                if item["Id"] in self._seen:
                    continue
                batch = self._cloudfront.get_invalidation(
                    DistributionId=self.distribution_id, Id=item["Id"]
                )["Invalidation"]["InvalidationBatch"]
                paths.extend(batch["Paths"].get("Items", []))
                self._seen.add(item["Id"])
        if not paths:
            return
        with self._lock:
            for path in paths:
                if path.endswith("*"):
                    for cached in [p for p in self._entries if p.startswith(path[:-1])]:
                        self._drop(cached)
                else:
                    self._drop(path)
        log.info("CDN stand-in: %d paths invalidated", len(paths))


def _cached_response(entry: Cached, head_only: bool, if_none_match: str | None) -> Response:
    headers = _common_headers(entry.obj)
    if if_none_match is not None and etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(len(entry.data))
    media_type = entry.obj.content_type or "application/octet-stream"
    if head_only:
        return Response(status_code=200, headers=headers, media_type=media_type)
    return Response(entry.data, status_code=200, headers=headers, media_type=media_type)


def create_local_router(
    settings: ApiSettings,
    *,
    folders: Sequence[str] = ("thumbs", "optimized"),
    api_key: str | None = None,
    gallery_token: Callable[[], str] | None = None,
    distribution_id: str | None = None,
) -> APIRouter:
    """The CDN stand-in for each rendition folder, and the gallery.

    The gallery signs in as a web app would: with ``gallery_token`` (a token from the local
    issuer, served at ``/local/token``), else with ``api_key`` written into the page. Either
    only ever for a stack bound to loopback, whose Host check keeps other sites' pages out.
    With ``distribution_id`` (the embedded AWS's distribution) renditions are cached as an
    edge caches them, until invalidated there.
    """
    router = APIRouter(include_in_schema=False)
    cdn = LocalCdn(settings, distribution_id)
    for folder in folders:
        router.add_api_route(
            f"/{folder}/{{name}}",
            cdn.route(folder),
            methods=["GET", "HEAD"],
            name=f"cdn_{folder}",
            response_class=Response,
        )
    _add_gallery(router, api_key, TOKEN_PATH if gallery_token else "")
    if gallery_token is not None:

        @router.get(TOKEN_PATH)
        def token() -> Response:
            body = json.dumps({"access_token": gallery_token(), "token_type": "Bearer"})
            return Response(
                body, media_type="application/json", headers={"Cache-Control": "no-store"}
            )

    return router


class LocalCdn:
    """Serves ``<public prefix><folder>/<file>`` from the bucket as CloudFront would."""

    def __init__(self, settings: ApiSettings, distribution_id: str | None = None) -> None:
        self.settings = settings
        self.edge = (
            EdgeCache(self._client("cloudfront"), distribution_id) if distribution_id else None
        )

    def _client(self, service: str, *, pool: int | None = None) -> Any:
        from processor.aws.clients import FOR_REQUESTS, aws_client

        settings = self.settings
        timeouts = replace(FOR_REQUESTS, pool=pool) if pool else FOR_REQUESTS
        return aws_client(
            service, region=settings.region, endpoint_url=settings.endpoint_url, timeouts=timeouts
        )

    @cached_property
    def store(self) -> S3ObjectStore:
        from processor.aws.s3 import S3ObjectStore

        # A gallery loads many thumbnails at once and uvicorn serves them from 40 threads:
        # with botocore's 10 connections, every request past the tenth opened a new one.
        return S3ObjectStore(self._client("s3", pool=CDN_CONNECTIONS))

    def route(self, folder: str) -> Any:
        def read_rendition(
            name: str,
            request: Request,
            if_none_match: Annotated[str | None, Header()] = None,
            range_: Annotated[str | None, Header(alias="range")] = None,
        ) -> Response:
            return self.serve(folder, name, request, if_none_match, range_)

        return read_rendition

    def serve(
        self,
        folder: str,
        name: str,
        request: Request,
        if_none_match: str | None,
        range_: str | None,
    ) -> Response:
        if not _FILE.match(name) or ".." in name:
            raise NotFound(f"no such file: {folder}/{name}")
        head_only = request.method == "HEAD"
        wanted = None if head_only else single_range(range_)
        path = f"/{folder}/{name}"
        entry = self.edge.get(path) if self.edge is not None and wanted is None else None
        if entry is not None:
            return _cached_response(entry, head_only, if_none_match)
        obj = self._fetch(folder, name, head_only=head_only, wanted=wanted, asked=range_)
        edge = self.edge
        if edge is not None and obj.body is not None and not wanted:
            if obj.size <= edge.max_object_bytes:
                # A whole rendition: keep it, as an edge does, and answer from the copy.
                data = b"".join(_stream(obj.body))
                edge.put(path, obj, data)
                return _cached_response(Cached(obj, data), head_only, if_none_match)
        return _respond(obj, wanted, if_none_match)

    def _fetch(
        self, folder: str, name: str, *, head_only: bool, wanted: str | None, asked: str | None
    ) -> StoredObject:
        bucket, key = self.settings.bucket, f"{self.settings.public_prefix}{folder}/{name}"
        try:
            if head_only:
                return self.store.head(bucket, key)
            return self.store.read(bucket, key, byte_range=wanted)
        except SourceMissing as e:
            raise NotFound(f"no such file: {folder}/{name}") from e
        except RangeNotSatisfiable as e:
            size = self.store.head(bucket, key).size
            raise RangeUnsatisfiable(
                f"the range {asked!r} is outside the file",
                headers={"Content-Range": f"bytes */{size}"},
            ) from e


def _respond(obj: StoredObject, wanted: str | None, if_none_match: str | None) -> Response:
    """200, 206 or 304, with the headers CloudFront sends."""
    headers = _common_headers(obj)
    body = obj.body
    if if_none_match is not None and etag_matches(if_none_match, headers["ETag"]):
        if body is not None:
            body.close()
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(obj.size)
    media_type = obj.content_type or "application/octet-stream"
    if body is None:
        return Response(status_code=200, headers=headers, media_type=media_type)
    status = 200
    if wanted and obj.content_range:
        status = 206
        headers["Content-Range"] = obj.content_range
    return StreamingResponse(
        _stream(body), status_code=status, headers=headers, media_type=media_type
    )


def _add_gallery(router: APIRouter, api_key: str | None, token_url: str) -> None:
    page = (GALLERY / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{API_KEY}}", html.escape(api_key or "", quote=True))
    page = page.replace("{{TOKEN_URL}}", html.escape(token_url, quote=True))
    page = render_formats(page)

    @router.get("/", response_class=HTMLResponse)
    def gallery() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/gallery/{asset}")
    def gallery_asset(asset: str) -> FileResponse:
        media_type = GALLERY_ASSETS.get(asset)
        if media_type is None:
            raise NotFound(f"no such gallery file: {asset}")
        return FileResponse(
            GALLERY / asset, media_type=media_type, headers={"Cache-Control": "no-cache"}
        )
