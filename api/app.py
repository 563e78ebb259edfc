"""The app factory: one FastAPI app per call, for the Lambda handler and for uvicorn alike.

    uvicorn --factory api.app:create_app      # settings from IMGPIPE_* variables

Authorisation is decided here, once, from the settings: routers do not know about it.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import docs, problems
from api.bootstrap import Services
from api.deps import API_KEY_HEADER, auth_dependencies
from api.routes import health, images, uploads
from api.settings import ApiSettings, load_settings
from processor.core.errors import ConfigError

DESCRIPTION = """\
Find processed images and upload new ones.

* **Reads** (`GET /images`, `GET /images/{image_id}`) are public unless the deployment says
  otherwise. Every image carries absolute rendition URLs on the CDN, a `srcset` per format, a
  `src` fallback, its intrinsic width and height, dominant colour and BlurHash placeholder.
* **Writes** (uploads, delete, reprocess) need the `x-api-key` header (servers, tools) or a
  bearer JWT from the deployment's OpenID Connect issuer (web and mobile apps). A token's
  subject is the uploader of what it uploads; it may delete and reprocess its own uploads,
  or any with the admin scope.
* **Uploads** go straight to S3: a presigned POST for ordinary files, a multipart upload with
  presigned part URLs for big ones.
* **Errors** are RFC 9457 `application/problem+json` documents with a stable `code`.
"""


def create_app(settings: ApiSettings | None = None, *, behind_gateway: bool = False) -> FastAPI:
    """The app. ``behind_gateway``: it runs behind API Gateway's authorisers (the Lambda
    handler says so); IMGPIPE_AUTH_MODE=gateway anywhere else is refused, because there no
    authoriser has checked anyone and every caller could upload."""
    settings = settings if settings is not None else load_settings()
    if settings.auth_mode == "gateway" and not behind_gateway:
        raise ConfigError(
            "IMGPIPE_AUTH_MODE=gateway trusts API Gateway's authorisers, and this app is not "
            "behind them (only api.handler on Lambda is): use IMGPIPE_AUTH_MODE=api_key"
        )
    app = FastAPI(
        title="imgpipe API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        # Served by api.docs from the app's own assets, not FastAPI's CDN-loading pages.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = Services(settings)
    problems.install(app)
    docs.install(app)

    guard = auth_dependencies(settings)
    guarded = problems.problem_responses(401) if guard else None
    reads = [] if settings.reads_public else guard

    app.include_router(health.router)
    app.include_router(images.router, dependencies=reads, responses=guarded if reads else None)
    app.include_router(images.write_router, dependencies=guard, responses=guarded)
    app.include_router(uploads.router, dependencies=guard, responses=guarded)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["content-type", API_KEY_HEADER, "authorization", "if-none-match"],
            expose_headers=["etag"],
            max_age=600,
        )
    return app
