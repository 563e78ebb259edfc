"""An OpenID Connect issuer of the local stack's own, on loopback: keys, JWKS and tokens.

In AWS, web apps sign their users in with Cognito, Auth0 or any OIDC provider, and the HTTP
API's JWT authoriser checks the tokens against the provider's published keys. Locally this
plays the provider, so that the API's token checks (api/tokens.py) run against real RS256
signatures fetched over HTTP, not a mock:

    GET  /.well-known/openid-configuration   discovery: issuer, jwks_uri, token_endpoint
    GET  /.well-known/jwks.json              the public key(s)
    POST /token                              OAuth 2.0 client credentials (form or Basic)

``/token`` takes the stack's client id and secret (printed by ``imgpipe local``), an optional
``scope``, and an optional ``subject``: a local-only extension so that one machine can act as
several users. Scopes in ``refused_scopes`` are never granted (``--real-aws`` refuses the admin
scope: there it would change real images). The server answers only loopback Host names (a
DNS-rebinding page gets 421), binds loopback unless told otherwise, and reads a form of at
most ``MAX_FORM_BYTES`` (a missing, negative or unreadable Content-Length is a 400). Keys live
in memory: a restart invalidates every token, as a new provider would; ``rotate()`` replaces
the key as a provider's rotation does.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from cli.local.guard import Refused, check_host, content_length

LOCAL_AUDIENCE = "imgpipe-local"
LOCAL_CLIENT_ID = "imgpipe-local-client"
TOKEN_TTL_S = 3600
MAX_FORM_BYTES = 8192
JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class LocalIssuer:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, refused_scopes: Iterable[str] = ()
    ) -> None:
        self._host, self._port = host, port
        self._key = _new_key()
        self.refused_scopes = frozenset(refused_scopes)
        self.client_id = LOCAL_CLIENT_ID
        self.client_secret = secrets.token_urlsafe(24)
        self.url = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- the provider's side -----------------------------------------------------------------

    @property
    def kid(self) -> str:
        return str(self._key.kid)

    def rotate(self) -> None:
        """A new signing key; the old one leaves the JWKS, as after a provider's rotation."""
        self._key = _new_key()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False) | {"use": "sig", "alg": "RS256"}]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.url + JWKS_PATH,
            "token_endpoint": self.url + "/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "client_secret_basic",
            ],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def token(
        self,
        subject: str | None,
        *,
        scopes: Iterable[str] = (),
        audience: str | None = LOCAL_AUDIENCE,
        expires_in: int = TOKEN_TTL_S,
        issuer: str | None = None,
        key: Any = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A signed access token. ``issuer`` and ``key`` default to this issuer's own; tests
        pass others, no ``subject``, or ``claims`` that replace the usual ones, to make
        tokens that must be refused (forged, from elsewhere, malformed)."""
        from joserfc import jwt

        refused = self.refused_scopes.intersection(scopes)
        if refused:
            raise ValueError(f"this issuer grants no {sorted(refused)} scope")
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.url,
            "client_id": self.client_id,
            "iat": min(now, now + expires_in),
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
        }
        if subject is not None:
            payload["sub"] = subject
        if audience is not None:  # None: like Cognito's access tokens, client_id only
            payload["aud"] = audience
        scope = " ".join(scopes)
        if scope:
            payload["scope"] = scope
        payload.update(claims or {})
        signer = key if key is not None else self._key
        header = {"alg": "RS256", "typ": "JWT", "kid": str(signer.kid or self.kid)}
        return str(jwt.encode(header, payload, signer))

    # --- the HTTP server ---------------------------------------------------------------------

    def start(self) -> str:
        issuer = self

        class Handler(_Handler):
            owner = issuer

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        port = int(self._server.server_address[1])
        shown = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{shown}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oidc-issuer", daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    owner: LocalIssuer
    server_version = "imgpipe-local-oidc"
    timeout = 10  # seconds a client may take to send its request: a stalled one frees its thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the stack's own log says what matters."""

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, handle: Any) -> None:
        """Every refusal an answer (never an exception that drops the connection)."""
        try:
            check_host(self.headers.get("Host"), (self.owner._host,))
            self._send(*handle())
        except Refused as refused:
            self.close_connection = True  # an unread body must not be taken for a request
            error = "invalid_request"
            self._send(refused.status, {"error": error, "error_description": refused.reason})

    def _get(self) -> tuple[int, dict[str, Any]]:
        if self.path == DISCOVERY_PATH:
            return 200, self.owner.discovery()
        if self.path == JWKS_PATH:
            return 200, self.owner.jwks()
        return 404, {"error": "not_found"}

    def _post(self) -> tuple[int, dict[str, Any]]:
        if self.path != "/token":
            return 404, {"error": "not_found"}
        form = self._form()
        client_id, client_secret = _client_credentials(self.headers.get("Authorization"), form)
        owner = self.owner
        good_id = hmac.compare_digest(client_id.encode(), owner.client_id.encode())
        good_secret = hmac.compare_digest(client_secret.encode(), owner.client_secret.encode())
        if not (good_id and good_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        scopes = form.get("scope", "").split(" ")
        scopes = [s for s in scopes if s]
        if owner.refused_scopes.intersection(scopes):
            return 400, {"error": "invalid_scope", "error_description": "scope not granted here"}
        subject = form.get("subject") or owner.client_id
        token = owner.token(subject, scopes=scopes)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_S,
        }
        if scopes:
            body["scope"] = " ".join(scopes)
        return 200, body

    def _form(self) -> dict[str, str]:
        """The form, read to its declared length only, and only if that is small."""
        length = content_length(self.headers.get("Content-Length"), MAX_FORM_BYTES)
        if length is None:
            raise Refused(411, "length_required", "a form needs its Content-Length")
        try:
            text = self.rfile.read(length).decode("utf-8")
            pairs = parse_qs(text, max_num_fields=64)
        except TimeoutError as e:
            raise Refused(408, "timeout", "the form did not arrive in time") from e
        except ValueError as e:  # UnicodeDecodeError included
            raise Refused(400, "bad_request", "the form is not UTF-8 form data") from e
        return {k: v[0] for k, v in pairs.items()}


def _new_key() -> Any:
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    key.ensure_kid()
    return key


def _client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    """client_secret_basic (the Authorization header) or client_secret_post (the form)."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
            return client_id, secret
        except (ValueError, UnicodeError):
            return "", ""
    return form.get("client_id", ""), form.get("client_secret", "")
