"""Bearer tokens checked the way API Gateway's JWT authoriser checks them, for the local stack.

In AWS the gateway verifies a token before the API sees the request (``IMGPIPE_AUTH_MODE=
gateway``) and passes its claims in the event. Run anywhere else (``imgpipe local``,
uvicorn), the API does the same checks itself, in the same order, so that what passes
locally passes there:

1. the issuer's discovery document (``<issuer>/.well-known/openid-configuration``) names the
   JWKS; the token's ``kid`` picks a key from it (fetched again, at most every
   ``REFRESH_S``, when a token names a key it does not hold: keys rotate);
2. the signature, RS256 only (API Gateway accepts RSA keys only);
3. ``iss`` equals the issuer; ``aud`` (else ``client_id``) is one of the audiences;
4. ``exp`` is in the future, ``nbf`` and ``iat`` (when present) are not.

joserfc is imported only when a token arrives: the Lambda API never loads it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.problems import ServiceUnavailable, Unauthorized
from api.settings import ISSUER_URL_PREFIXES

DISCOVERY_PATH = "/.well-known/openid-configuration"
REFRESH_S = 30.0  # least time between two JWKS fetches for unknown key ids
FETCH_TIMEOUT_S = 5.0
# API Gateway allows no clock skew in its checks; a second here absorbs the rounding of
# integer timestamps between two processes on one machine.
LEEWAY_S = 1


class InvalidToken(Unauthorized):
    """The bearer token is not one this deployment accepts (signature, issuer, audience, time)."""

    code = "invalid_token"


@dataclass(frozen=True)
class VerifiedToken:
    subject: str | None
    scopes: frozenset[str]
    claims: dict[str, Any]


class TokenVerifier:
    def __init__(self, issuer: str, audiences: Sequence[str]) -> None:
        self.issuer = issuer.rstrip("/")
        self.audiences = frozenset(audiences)
        self._lock = threading.Lock()
        self._keys: Any = None  # joserfc KeySet
        self._fetched_at = float("-inf")

    def verify(self, token: str) -> VerifiedToken:
        from joserfc import jwt
        from joserfc.errors import JoseError

        header = _header(token)
        if header.get("alg") != "RS256":
            raise InvalidToken("the bearer token must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the bearer token names no key (kid)")
        key = self._key(kid)
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"]).claims
        except (JoseError, ValueError) as e:
            raise InvalidToken("the bearer token's signature does not verify") from e
        self._check_claims(claims)
        subject = claims.get("sub")
        scopes = frozenset(str(claims.get("scope") or claims.get("scp") or "").split())
        return VerifiedToken(str(subject) if subject else None, scopes, dict(claims))

    def _check_claims(self, claims: dict[str, Any]) -> None:
        if str(claims.get("iss", "")).rstrip("/") != self.issuer:
            raise InvalidToken("the bearer token is from another issuer")
        audience = claims.get("aud", claims.get("client_id"))
        given = {audience} if isinstance(audience, str) else set(audience or [])
        if not given & self.audiences:
            raise InvalidToken("the bearer token is for another audience")
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise InvalidToken("the bearer token has no expiry (exp)")
        if exp <= now - LEEWAY_S:
            raise InvalidToken("the bearer token has expired")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not isinstance(value, int | float) or value > now + LEEWAY_S):
                raise InvalidToken(f"the bearer token is not valid yet ({name})")

    def _key(self, kid: str) -> Any:
        from joserfc.jwk import KeySet

        with self._lock:
            if not self._holds(kid) and time.monotonic() - self._fetched_at >= REFRESH_S:
                self._keys = KeySet.import_key_set(self._fetch_jwks())
                self._fetched_at = time.monotonic()
            if not self._holds(kid):
                raise InvalidToken("the bearer token names a key its issuer does not publish")
            return self._keys.get_by_kid(kid)

    def _holds(self, kid: str) -> bool:
        return self._keys is not None and any(k.kid == kid for k in self._keys.keys)

    def _fetch_jwks(self) -> Any:
        discovery = _get_json(self.issuer + DISCOVERY_PATH)
        jwks_uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
        if not isinstance(jwks_uri, str):
            raise ServiceUnavailable("the token issuer's discovery document has no jwks_uri")
        jwks = _get_json(jwks_uri)
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ServiceUnavailable("the token issuer's JWKS is not a key set")
        return jwks


def _header(token: str) -> dict[str, Any]:
    """The token's JOSE header, read before any key is chosen."""
    try:
        head = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeError) as e:
        raise InvalidToken("the bearer token is not a JWT") from e
    if token.count(".") != 2 or not isinstance(header, dict):
        raise InvalidToken("the bearer token is not a JWT")
    return header


def _get_json(url: str) -> Any:
    if not url.startswith(ISSUER_URL_PREFIXES):
        raise ServiceUnavailable("the token issuer is neither https nor on this machine")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310
            return json.loads(response.read(1_000_000))
    except (OSError, ValueError) as e:
        # Not the URL: a user-facing message names no server-side address.
        raise ServiceUnavailable("the token issuer cannot be reached") from e
