"""FastAPI dependencies: settings, adapters and authorisation, as ``Annotated`` aliases.

Tests swap any adapter with ``app.dependency_overrides[get_repo] = lambda: fake``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

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
    description="The deployment's API key (IMGPIPE_API_KEY): servers and tools.",
)
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    bearerFormat="JWT",
    description="A JWT from the deployment's OpenID Connect issuer (IMGPIPE_JWT_ISSUER, the "
    "template's JwtIssuer): web and mobile apps. Its subject becomes the upload's uploader.",
)


@dataclass(frozen=True)
class Caller:
    """Who is asking, as far as the API can tell; decides what a read shows.

    ``writer``: holds write authorisation (the key, a valid token, the gateway's word), so
    may upload. ``subject``: the token's subject when a JWT authorised the request (the
    uploader). ``admin``: the key, or a token with the admin scope. What an image shows
    beyond its public view (any state but done, its source key, uploader and error) and who
    may delete or reprocess it: an admin for every image, a subject for its own uploads,
    nobody else (a token without ``sub`` owns nothing).
    """

    writer: bool
    subject: str | None = None
    admin: bool = False

    def may_manage(self, uploader: str | None) -> bool:
        """Sees the image's private view and may change it."""
        return self.admin or (self.subject is not None and self.subject == uploader)


ANONYMOUS = Caller(writer=False)


def _key_matches(settings: ApiSettings, key: str | None) -> bool:
    expected = settings.api_key
    if expected is None or key is None:
        return False
    # Constant time: a key must not be guessable character by character from response times.
    return hmac.compare_digest(key.encode(), expected.get_secret_value().encode())


def gateway_caller(event: dict[str, Any] | None, settings: ApiSettings) -> Caller:
    """The caller as API Gateway's authoriser described it in the event (never the client).

    ``jwt``: the native JWT authoriser (claims of a verified token). ``lambda``: the key
    authoriser's context, ``writer`` true when the key matched. Every route of the template
    has an authoriser: a request without one's word (a function URL, a direct invoke) is
    nobody, and refused outright when reads are private.
    """
    context = ((event or {}).get("requestContext") or {}).get("authorizer") or {}
    jwt = context.get("jwt")
    if jwt is not None:
        from api.tokens import token_scopes  # only for token callers: it loads urllib

        claims = jwt.get("claims") or {}
        scopes = token_scopes(claims.get("scope")) | set(jwt.get("scopes") or [])
        subject = claims.get("sub")
        return Caller(
            writer=True,
            subject=subject if isinstance(subject, str) and subject else None,
            admin=settings.admin_scope in scopes,
        )
    lam = context.get("lambda")
    if lam is not None:
        writer = str(lam.get("writer", "")).lower() == "true"
        return Caller(writer=writer, admin=writer)
    if "iam" in context:
        return Caller(writer=True, admin=True)
    if not settings.reads_public:
        raise Unauthorized("reads are private and no authoriser vouched for this request")
    return ANONYMOUS


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def get_caller(request: Request, settings: SettingsDep, services: ServicesDep) -> Caller:
    # The headers are read here, not declared as Security schemes: on a public read they are
    # optional, and OpenAPI would otherwise document every read as needing them.
    if settings.auth_mode == "gateway":
        return gateway_caller(request.scope.get("aws.event"), settings)
    token = _bearer_token(request)
    if token is not None:
        # What API Gateway's JWT authoriser would have checked (api/tokens.py); a token that
        # fails is refused even on a read, as the gateway refuses it.
        verifier = services.tokens
        if verifier is None:
            raise Unauthorized("bearer tokens are not accepted: no token issuer is configured")
        verified = verifier.verify(token)
        return Caller(
            writer=True, subject=verified.subject, admin=settings.admin_scope in verified.scopes
        )
    writer = _key_matches(settings, request.headers.get(API_KEY_HEADER))
    return Caller(writer=writer, admin=writer)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_writer(
    request: Request,
    settings: SettingsDep,
    caller: CallerDep,
    _key: Annotated[str | None, Security(api_key_header)],
    _token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    """The key or a valid bearer token (get_caller has checked it); the two Security
    parameters only document the alternatives in OpenAPI."""
    if caller.writer:
        return
    if settings.api_key is None and settings.jwt_issuer is None:
        raise Unauthorized("writes are disabled: this deployment has no API key configured")
    if request.headers.get(API_KEY_HEADER) is None:
        raise Unauthorized(f"the {API_KEY_HEADER} header or a bearer token is required")
    raise Unauthorized(f"the {API_KEY_HEADER} header does not match")


def require_gateway_writer(caller: CallerDep) -> None:
    """Behind API Gateway its authoriser has checked the caller; this only reads its word,
    so that a request no authoriser vouched for (a route added without one, a direct
    invoke) changes nothing."""
    if not caller.writer:
        raise Unauthorized("no authoriser vouched for this caller's write authorisation")


def auth_dependencies(settings: ApiSettings) -> list[DependsParam]:
    """What guards a protected route: the API key or a token here, or the word of API
    Gateway's authoriser in the event (IMGPIPE_AUTH_MODE=gateway)."""
    if settings.auth_mode == "gateway":
        return [Depends(require_gateway_writer)]
    return [Security(require_writer)]
