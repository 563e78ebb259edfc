"""The API's settings (IMGPIPE_*), validated once when the app is built.

Extends the shared AWS settings with what only the HTTP side needs: where renditions are
served from, who may write, how cursors are signed, CORS and upload limits.
"""

from __future__ import annotations

import logging
import re
import secrets
from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from processor.core.settings import AwsSettings, load

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB

# S3's own multipart rules: every part but the last is at least 5 MiB, at most 5 GiB, and an
# upload has at most 10,000 parts.
S3_MIN_PART_BYTES = 5 * MiB
S3_MAX_PART_BYTES = 5 * GiB
S3_MAX_PARTS = 10_000

AuthMode = Literal["api_key", "gateway"]

# Where a token issuer may be reached: https, or plain http on this machine only (the local
# stack's issuer). Checked on the setting and again on every URL its discovery names.
# The host and port of a plain-http issuer: a loopback name, exactly.
_LOOPBACK_NETLOC = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?", re.IGNORECASE)


def issuer_url_allowed(url: str) -> bool:
    """https anywhere, or http to a loopback host, judged on the whole host: a prefix test let
    ``http://127.0.0.1.evil.example`` and ``http://localhost@evil.example`` pass."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # a port that is not a number raises
    except ValueError:
        return False
    if not host or "@" in parts.netloc:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _LOOPBACK_NETLOC.fullmatch(parts.netloc) is not None


class ApiSettings(AwsSettings):
    """Settings of the metadata and upload API (Lambda behind API Gateway, or uvicorn locally)."""

    # Absolute base of rendition URLs: the CloudFront domain in AWS, the local stack's own
    # address locally. A rendition's URL is f"{cdn_base_url}/{RenditionInfo.key}".
    cdn_base_url: str = Field(
        min_length=1, description="e.g. https://d111111abcdef8.cloudfront.net"
    )
    # "api_key": writes need the `x-api-key` header equal to `api_key` (unset key: writes are
    # refused). "gateway": an API Gateway authoriser has already checked the caller.
    auth_mode: AuthMode = "api_key"
    api_key: SecretStr | None = None
    # HMAC key of pagination cursors. Unset: a random key per process, so a cursor only works
    # on the instance that made it (fine for one local process, wrong on Lambda: set it there).
    cursor_secret: SecretStr | None = None
    # Comma-separated or JSON list; empty means no CORS headers at all.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # False: reads need the same authorisation as writes. True: anyone reads done images;
    # other statuses, source keys and errors need write authorisation.
    reads_public: bool = True
    # The scope of a JWT that may delete or reprocess any image, not only its own uploads.
    admin_scope: str = Field("imgpipe/admin", min_length=1)
    # Bearer tokens (JWTs) authorise writes as the key does, and their subject becomes the
    # upload's uploader. In AWS the gateway's JWT authoriser checks them (the template's
    # JwtIssuer and JwtAudience); with auth_mode "api_key" the API checks them itself
    # (api/tokens.py) against this issuer's published keys. Unset: tokens are refused.
    jwt_issuer: str | None = None
    jwt_audience: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Largest upload accepted, in bytes, for presigned POST and multipart alike. Keep it in step
    # with the processor's IMGPIPE_MAX_INPUT_BYTES: a larger upload would only be rejected there.
    max_upload_bytes: int = Field(200 * MiB, ge=1)
    # Preferred multipart part size in bytes; raised when a file would need more than 10,000
    # parts. 16 MiB parts upload in parallel well and retry cheaply.
    multipart_part_bytes: int = Field(16 * MiB, ge=S3_MIN_PART_BYTES, le=S3_MAX_PART_BYTES)
    # Lifetime of presigned POSTs and part URLs, in seconds.
    presign_expires_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)

    @field_validator("cdn_base_url")
    @classmethod
    def _cdn_shape(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"IMGPIPE_CDN_BASE_URL must start with https:// or http://, got {v!r}")
        return v.rstrip("/")

    @field_validator("jwt_issuer")
    @classmethod
    def _issuer_shape(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not issuer_url_allowed(v):
            raise ValueError("IMGPIPE_JWT_ISSUER must be an https:// URL (or http on loopback)")
        return v.rstrip("/")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: object) -> object:
        items = _split(v)
        return [o.rstrip("/") for o in items] if isinstance(items, list) else items

    @field_validator("jwt_audience", mode="before")
    @classmethod
    def _split_audience(cls, v: object) -> object:
        return _split(v)

    @model_validator(mode="after")
    def _auth_consistent(self) -> ApiSettings:
        if self.auth_mode == "api_key" and self.api_key is None:
            logger.warning("IMGPIPE_API_KEY is not set: every write (upload, delete) is refused")
        if self.api_key is not None and len(self.api_key.get_secret_value()) < 16:
            raise ValueError("IMGPIPE_API_KEY must be at least 16 characters")
        if self.jwt_issuer is not None and not self.jwt_audience:
            raise ValueError("IMGPIPE_JWT_AUDIENCE is required with IMGPIPE_JWT_ISSUER")
        if self.cursor_secret is not None and len(self.cursor_secret.get_secret_value()) < 16:
            raise ValueError("IMGPIPE_CURSOR_SECRET must be at least 16 characters")
        return self

    @cached_property
    def cursor_key(self) -> bytes:
        if self.cursor_secret is not None:
            return self.cursor_secret.get_secret_value().encode()
        logger.warning("IMGPIPE_CURSOR_SECRET is not set: cursors are valid on this process only")
        return secrets.token_bytes(32)


def _split(v: object) -> object:
    """A comma-separated or JSON list from the environment, as a list."""
    if isinstance(v, str):
        text = v.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return v


def load_settings() -> ApiSettings:
    """Settings from the environment; a wrong or missing variable is named in the error."""
    return load(ApiSettings)
