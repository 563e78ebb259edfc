"""Bearer tokens checked the way API Gateway's JWT authoriser checks them, for the local stack.

In AWS the gateway verifies a token before the API sees the request (``IMGPIPE_AUTH_MODE=
gateway``) and passes its claims in the event. Run anywhere else (``imgpipe local``,
uvicorn), the API does the same checks itself, in the same order, so that what passes
locally passes there:

1. the issuer's discovery document (``<issuer>/.well-known/openid-configuration``) names the
   JWKS; the token's ``kid`` picks a key from it. The keys are fetched again when a token
   names a key not held (at most every ``REFRESH_S``: keys rotate) and whenever they are
   older than ``KEYS_MAX_AGE_S``, so a key the issuer removed stops working within that
   time even if no token ever names an unknown key;
2. the signature, RS256 only (API Gateway accepts RSA keys only);
3. ``iss`` equals the issuer; ``aud`` (else ``client_id``) is a string or a list of strings,
   one of them an audience;
4. ``exp`` is a finite number in the future, ``nbf`` and ``iat`` (when present) finite
   numbers not in the future (JSON's ``NaN`` and ``Infinity`` compare false with everything,
   so they would pass any check);
5. ``sub``, when present, is a string; ``scope`` is RFC 6749's space-separated scope tokens
   (visible ASCII only: a no-break space must not split ``foo imgpipe/admin`` into two).

joserfc is imported only when a token arrives: the Lambda API never loads it.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.problems import ServiceUnavailable, Unauthorized
from api.settings import issuer_url_allowed

DISCOVERY_PATH = "/.well-known/openid-configuration"
REFRESH_S = 30.0  # least time between two JWKS fetches for unknown key ids
# Longest time keys are used without fetching them again: a removed key works at most this
# long. (API Gateway's own JWT authoriser caches keys for up to an hour.)
KEYS_MAX_AGE_S = 300.0
FETCH_TIMEOUT_S = 5.0
# API Gateway allows no clock skew in its checks; a second here absorbs the rounding of
# integer timestamps between two processes on one machine.
LEEWAY_S = 1


class InvalidToken(Unauthorized):
    """The bearer token is not one this deployment accepts (signature, issuer, audience, time)."""

    code = "invalid_token"


# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by %x20.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def token_scopes(value: object) -> frozenset[str]:
    """The scopes of a ``scope`` claim (a space-separated string) or an ``scp`` claim (a
    list, as Okta sends it). Anything else, or a character outside RFC 6749's scope tokens
    (a no-break space, a tab, a quote), makes the token invalid: a split taken by another
    reader would grant other scopes."""
    if value is None or value == "":
        return frozenset()
    if isinstance(value, str):
        items = [item for item in value.split(" ") if item]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise InvalidToken("the bearer token's scope is neither a string nor a list of them")
    if not all(_SCOPE_TOKEN.fullmatch(item) for item in items):
        raise InvalidToken("the bearer token's scope has characters scopes cannot have")
    return frozenset(items)


def _timestamp(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"the bearer token's {name} is not a time")
    return float(value)


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
        if subject is not None and not isinstance(subject, str):
            raise InvalidToken("the bearer token's subject (sub) is not a string")
        scope = claims.get("scope")
        scope = claims.get("scp") if scope is None else scope
        return VerifiedToken(subject or None, token_scopes(scope), dict(claims))

    def _check_claims(self, claims: dict[str, Any]) -> None:
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.issuer:
            raise InvalidToken("the bearer token is from another issuer")
        audience = claims.get("aud", claims.get("client_id"))
        if isinstance(audience, str):
            given = {audience}
        elif isinstance(audience, list) and all(isinstance(a, str) for a in audience):
            given = set(audience)
        else:
            raise InvalidToken("the bearer token's audience is neither a string nor a list")
        if not given & self.audiences:
            raise InvalidToken("the bearer token is for another audience")
        now = time.time()
        exp = _timestamp(claims, "exp")
        if exp is None:
            raise InvalidToken("the bearer token has no expiry (exp)")
        if exp <= now - LEEWAY_S:
            raise InvalidToken("the bearer token has expired")
        for name in ("nbf", "iat"):
            value = _timestamp(claims, name)
            if value is not None and value > now + LEEWAY_S:
                raise InvalidToken(f"the bearer token is not valid yet ({name})")

    def _key(self, kid: str) -> Any:
        from joserfc.jwk import KeySet

        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age >= KEYS_MAX_AGE_S or (not self._holds(kid) and age >= REFRESH_S):
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
    if not issuer_url_allowed(url):
        raise ServiceUnavailable("the token issuer is neither https nor on this machine")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310
            return json.loads(response.read(1_000_000))
    except (OSError, ValueError) as e:
        # Not the URL: a user-facing message names no server-side address.
        raise ServiceUnavailable("the token issuer cannot be reached") from e
