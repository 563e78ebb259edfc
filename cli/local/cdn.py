"""The CloudFront stand-in: an app of its own, on a port (an origin) of its own.

In AWS, CloudFront serves ``https://<cdn>/<rendition key>`` from the bucket's public prefix
(``OriginPath: /public``), on a domain of its own. Locally this app does the same on its own
port: ``GET /thumbs/<file>`` streams ``<public prefix>thumbs/<file>`` from the bucket with the
headers production sends (the object's immutable Cache-Control, ETag, Last-Modified, and the
response headers policy of the template, Content-Security-Policy ``default-src 'none'`` and
``nosniff`` among them), answers ``If-None-Match`` with 304 and ``Range`` with 206.

It serves renditions only: an object whose Content-Type is not one the processor writes
(``text/html``, SVG, anything unknown) is 404 here, whoever put it in the bucket. Locally any
process can write to the embedded AWS; a page served from here could otherwise run script.

Like CloudFront's edges, it keeps what it served (``EdgeCache``): a rendition once fetched is
served from memory, even after the object is deleted, until an invalidation on the embedded
AWS's distribution names its path. So a test that sees a deleted image's rendition go away
proves that the processor invalidated it, as it must for CloudFront.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Header, Request, Response
from fastapi.responses import StreamingResponse

from api import problems
from api.problems import ApiProblem, NotFound
from api.settings import ApiSettings
from processor.core.errors import RangeNotSatisfiable, SourceMissing
from processor.core.keys import CONTENT_TYPES
from processor.core.ports import IMMUTABLE, StoredObject
from processor.core.sizes import FOLDER as SIZES_FOLDER

if TYPE_CHECKING:
    from processor.aws.s3 import S3ObjectStore
    from processor.service.ondemand import OnDemand

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
CDN_CONNECTIONS = 40  # uvicorn's default thread pool: one connection to S3 per worker thread
# What the processor writes, and so all this serves (the Content-Type's media type).
RENDITION_TYPES = frozenset(CONTENT_TYPES.values())
# A rendition file name: "<id>-<version>.<ext>". Nothing else is ever served.
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Past 18 digits a position is beyond any file (S3's largest object is 5 TB, 13 digits), and
# Python refuses to read numbers of over 4,300 digits at all.
MAX_POSITION_DIGITS = 18


class RangeUnsatisfiable(ApiProblem):
    status, code = 416, "range_not_satisfiable"


class RangeBeyondFile(ValueError):
    """A Range that starts past the end of any file."""


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires: W/ prefixes are ignored."""
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))


def single_range(header: str | None) -> str | None:
    """A Range header S3 can answer (one ``bytes=`` range), or None to send the whole file.

    Several ranges, or a unit other than bytes, are ignored (RFC 9110 lets a server answer
    200 with the full content instead). A first position past any file raises
    ``RangeBeyondFile`` (416); a last position past any file means "to the end".
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    start, end = match.groups()
    if len(start) > MAX_POSITION_DIGITS:
        raise RangeBeyondFile(header)
    if len(end) > MAX_POSITION_DIGITS:
        # Longer than any file: from start to the end, or (a suffix) the whole file.
        start, end = start or "0", ""
    if start and end and int(end) < int(start):
        return None
    return f"bytes={start}-{end}"


def _common_headers(obj: StoredObject, edge_headers: Mapping[str, str]) -> dict[str, str]:
    headers = {
        "ETag": obj.etag,
        # The processor stores the immutable policy on every rendition; CloudFront passes it on.
        "Cache-Control": obj.cache_control or IMMUTABLE,
        "Accept-Ranges": "bytes",
        **edge_headers,
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


def _cached_response(
    entry: Cached, head_only: bool, if_none_match: str | None, edge_headers: Mapping[str, str]
) -> Response:
    headers = _common_headers(entry.obj, edge_headers)
    if if_none_match is not None and etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(len(entry.data))
    media_type = entry.obj.content_type or "application/octet-stream"
    if head_only:
        return Response(status_code=200, headers=headers, media_type=media_type)
    return Response(entry.data, status_code=200, headers=headers, media_type=media_type)


def create_cdn_app(
    settings: ApiSettings,
    *,
    folders: Sequence[str] = ("thumbs", "optimized"),
    distribution_id: str | None = None,
    edge_headers: Mapping[str, str] | None = None,
    on_demand: OnDemand | None = None,
) -> FastAPI:
    """The CDN stand-in: a route per rendition folder, nothing else (no docs, no schema).

    ``edge_headers``: what the template's response headers policy adds (cli/local/spec.py);
    by default, read from infra/template.yaml. With ``distribution_id`` (the embedded AWS's
    distribution) renditions are cached as an edge caches them, until invalidated there.
    With ``on_demand``, ``/sizes/...`` is the template's origin group: S3 first, and on its
    404 the on-demand function's answer (processor/entrypoints/ondemand.py), made in this
    process against the same embedded AWS.
    """
    if edge_headers is None:
        from cli.local.spec import TEMPLATE, edge_response_headers
        from infra.template import load_template

        edge_headers = edge_response_headers(load_template(TEMPLATE))
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    problems.install(app)
    cdn = LocalCdn(settings, distribution_id, edge_headers=edge_headers, on_demand=on_demand)
    if on_demand is not None:
        folders = [*folders, SIZES_FOLDER]
    for folder in folders:
        app.add_api_route(
            f"/{folder}/{{name}}",
            cdn.route(folder),
            methods=["GET", "HEAD"],
            name=f"cdn_{folder}",
            response_class=Response,
        )
    return app


class LocalCdn:
    """Serves ``<public prefix><folder>/<file>`` from the bucket as CloudFront would."""

    def __init__(
        self,
        settings: ApiSettings,
        distribution_id: str | None = None,
        *,
        edge_headers: Mapping[str, str],
        on_demand: OnDemand | None = None,
    ) -> None:
        self.settings = settings
        self.on_demand = on_demand
        self.edge_headers = dict(edge_headers)
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
        try:
            wanted = None if head_only else single_range(range_)
        except RangeBeyondFile:
            raise self._unsatisfiable(folder, name, range_) from None
        path = f"/{folder}/{name}"
        entry = self.edge.get(path) if self.edge is not None and wanted is None else None
        if entry is not None:
            return _cached_response(entry, head_only, if_none_match, self.edge_headers)
        try:
            obj = self._fetch(folder, name, head_only=head_only, wanted=wanted, asked=range_)
        except NotFound:
            if self.on_demand is None or folder != SIZES_FOLDER:
                raise
            # The origin group's second origin: S3 said 404, the function answers.
            return self._failover(path, request, if_none_match)
        if media_type(obj.content_type) not in RENDITION_TYPES:
            # Not something the processor wrote: never served, so never run as a page.
            if obj.body is not None:
                obj.body.close()
            raise NotFound(f"no such file: {folder}/{name}")
        edge = self.edge
        if edge is not None and obj.body is not None and not wanted:
            if obj.size <= edge.max_object_bytes:
                # A whole rendition: keep it, as an edge does, and answer from the copy.
                data = b"".join(_stream(obj.body))
                edge.put(path, obj, data)
                return _cached_response(
                    Cached(obj, data), head_only, if_none_match, self.edge_headers
                )
        return _respond(obj, wanted, if_none_match, self.edge_headers)

    def _failover(self, path: str, request: Request, if_none_match: str | None) -> Response:
        """What CloudFront returns from the on-demand function's URL: its answer, kept at the
        edge when it is a rendition, as any origin's 200 is."""
        from processor.entrypoints.ondemand import answer

        assert self.on_demand is not None
        caller = request.client.host if request.client else None
        response, _ = answer(self.on_demand, request.method, path, caller)
        status, headers = int(response["statusCode"]), dict(response["headers"])
        body = response.get("body", "")
        data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        if status != 200 or request.method == "HEAD":
            headers.pop("Content-Length", None)
            return Response(data, status_code=status, headers={**headers, **self.edge_headers})
        obj = StoredObject(
            etag=f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
            size=len(data),
            content_type=headers["Content-Type"],
            cache_control=headers["Cache-Control"],
            last_modified=datetime.now(UTC),
        )
        if self.edge is not None:
            self.edge.put(path, obj, data)
        return _cached_response(Cached(obj, data), False, if_none_match, self.edge_headers)

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
            raise self._unsatisfiable(folder, name, asked) from e

    def _unsatisfiable(self, folder: str, name: str, asked: str | None) -> ApiProblem:
        """416 with the file's size, as S3 and CloudFront answer; 404 if there is no file."""
        bucket, key = self.settings.bucket, f"{self.settings.public_prefix}{folder}/{name}"
        try:
            size = self.store.head(bucket, key).size
        except SourceMissing:
            return NotFound(f"no such file: {folder}/{name}")
        shown = asked if asked is None or len(asked) <= 64 else asked[:64] + "..."
        return RangeUnsatisfiable(
            f"the range {shown!r} is outside the file",
            headers={"Content-Range": f"bytes */{size}"},
        )


def media_type(content_type: str | None) -> str:
    """``image/webp`` of ``Image/WebP; charset=x``: what a browser decides by."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _respond(
    obj: StoredObject,
    wanted: str | None,
    if_none_match: str | None,
    edge_headers: Mapping[str, str],
) -> Response:
    """200, 206 or 304, with the headers CloudFront sends."""
    headers = _common_headers(obj, edge_headers)
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
