"""The gallery site the local stack adds to the API app: its page, its assets, its sign-in.

The gallery (``/``) is plain HTML, CSS and JavaScript from ``gallery/`` beside this file: no
build step. It signs in as a web app would, with a token from the stack's own issuer, which
``/local/token`` hands out only to a request that carries the per-run secret written into the
page (``x-imgpipe-gallery``). Other sites' pages cannot read the page (no CORS on it, and the
Host check keeps DNS-rebinding pages out) nor send the header without a preflight the API
refuses; renditions come from the CDN stand-in on an origin of their own, so no stored file
ever runs as a page of this one.
"""

from __future__ import annotations

import hmac
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import FileResponse, HTMLResponse

from api.problems import Forbidden, NotFound
from processor.core.formats import gallery_manifest

GALLERY = Path(__file__).resolve().parent / "gallery"
GALLERY_ASSETS = {"gallery.css": "text/css", "gallery.js": "text/javascript"}
TOKEN_PATH = "/local/token"  # the gallery's sign-in token
SECRET_HEADER = "x-imgpipe-gallery"
# The page is the one place the secret is written: never stored by a cache, never framed
# (a framed page's Delete button could be clicked through an overlay).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


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


def create_gallery_router(
    *,
    api_key: str | None = None,
    gallery_token: Callable[[], str] | None = None,
    secret: str = "",
) -> APIRouter:
    """The gallery page and assets, and its sign-in.

    With ``gallery_token`` (tokens from the local issuer) the page signs in at
    ``/local/token`` with ``secret``; else it writes with ``api_key`` written into the page.
    Either only ever for a stack bound to loopback.
    """
    if gallery_token is not None and len(secret) < 16:
        raise ValueError("the gallery's sign-in needs a secret of at least 16 characters")
    router = APIRouter(include_in_schema=False)
    token_url = TOKEN_PATH if gallery_token is not None else ""
    page = (GALLERY / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{API_KEY}}", html.escape(api_key or "", quote=True))
    page = page.replace("{{TOKEN_URL}}", html.escape(token_url, quote=True))
    page = page.replace("{{TOKEN_SECRET}}", html.escape(secret if token_url else "", quote=True))
    page = render_formats(page)

    @router.get("/", response_class=HTMLResponse)
    def gallery() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @router.get("/gallery/{asset}")
    def gallery_asset(asset: str) -> FileResponse:
        media_type = GALLERY_ASSETS.get(asset)
        if media_type is None:
            raise NotFound(f"no such gallery file: {asset}")
        return FileResponse(
            GALLERY / asset, media_type=media_type, headers={"Cache-Control": "no-cache"}
        )

    if gallery_token is not None:

        @router.get(TOKEN_PATH)
        def token(
            given: Annotated[str, Header(alias=SECRET_HEADER)] = "",
        ) -> Response:
            if not hmac.compare_digest(given.encode(), secret.encode()):
                raise Forbidden(f"the gallery's sign-in needs the {SECRET_HEADER} of its page")
            body = json.dumps({"access_token": gallery_token(), "token_type": "Bearer"})
            return Response(
                body, media_type="application/json", headers={"Cache-Control": "no-store"}
            )

    return router
