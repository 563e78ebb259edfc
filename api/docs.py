"""/docs (Swagger UI) and /redoc served from the app itself: no CDN, no Google fonts.

FastAPI's default pages load their scripts from a CDN, so they are blank without internet, and
the page where people type the API key would run third-party code. The assets here come from
the ``fastapi-offline`` wheel (Swagger UI and ReDoc bundles), a runtime dependency, so the
Lambda image ships them too. Every page and asset carries a Content-Security-Policy that
allows this origin only; the one inline script of each page is allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

ASSETS_URL = "/docs-assets"
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
# Styles: Swagger UI and ReDoc set style attributes and inject <style> elements at run time.
# Images: their icons are data: URIs. Workers: ReDoc's search runs in a blob: worker.
_POLICY = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSET_HEADERS = {
    "Content-Security-Policy": _POLICY.format(hashes=""),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=86400",
}


def assets_folder() -> Path:
    """The folder of Swagger UI's and ReDoc's bundles in the installed fastapi-offline wheel.

    Found without importing the package: the API's cold start does not pay for it.
    """
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fastapi-offline is not installed (it is a runtime dependency)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def content_security_policy(page: str) -> str:
    """The page's policy: own origin only, plus the hash of each of its inline scripts."""
    hashes = "".join(
        " 'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _SCRIPT.findall(page)
    )
    return _POLICY.format(hashes=hashes)


def _page(html: HTMLResponse) -> HTMLResponse:
    body = bytes(html.body).decode()
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": content_security_policy(body),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )


def install(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add the two pages and their assets. The app is created with docs_url=redoc_url=None."""
    from fastapi.staticfiles import StaticFiles

    class Assets(StaticFiles):
        async def get_response(self, path: str, scope):  # type: ignore[no-untyped-def]
            response = await super().get_response(path, scope)
            response.headers.update(ASSET_HEADERS)
            return response

    app.mount(ASSETS_URL, Assets(directory=assets_folder()), name="docs-assets")
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
