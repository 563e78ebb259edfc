"""FastAPI dependencies: settings, adapters and authorisation, as ``Annotated`` aliases.

Tests swap any adapter with ``app.dependency_overrides[get_repo] = lambda: fake``.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyHeader

from api.bootstrap import Services
from api.cursor import CursorSigner
from api.problems import ServiceUnavailable, Unauthorized
from api.settings import ApiSettings
from processor.core.ports import ImageReader, Queue, UploadStore

API_KEY_HEADER = "x-api-key"


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_repo(services: ServicesDep) -> ImageReader:
    return services.repo


def get_store(services: ServicesDep) -> UploadStore:
    return services.store


def get_queue(services: ServicesDep) -> Queue:
    queue = services.queue
    if queue is None:
        raise ServiceUnavailable("reprocessing is not configured (IMGPIPE_QUEUE_URL is not set)")
    return queue


def get_signer(services: ServicesDep) -> CursorSigner:
    return services.signer


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
RepoDep = Annotated[ImageReader, Depends(get_repo)]
StoreDep = Annotated[UploadStore, Depends(get_store)]
QueueDep = Annotated[Queue, Depends(get_queue)]
SignerDep = Annotated[CursorSigner, Depends(get_signer)]

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description="The deployment's API key (IMGPIPE_API_KEY).",
)


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)]
) -> None:
    expected = settings.api_key
    if expected is None:
        raise Unauthorized("writes are disabled: this deployment has no API key configured")
    if key is None:
        raise Unauthorized(f"the {API_KEY_HEADER} header is required")
    # Constant time: a key must not be guessable character by character from response times.
    if not hmac.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise Unauthorized(f"the {API_KEY_HEADER} header does not match")


def auth_dependencies(settings: ApiSettings) -> list[DependsParam]:
    """What guards a protected route: the API key here, or nothing when API Gateway's
    authoriser has already checked the caller (IMGPIPE_AUTH_MODE=gateway)."""
    if settings.auth_mode == "gateway":
        return []
    return [Security(require_api_key)]
