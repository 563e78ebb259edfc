"""An embedded AWS for the local stack: moto's server, on loopback, in a process of its own.

One endpoint serves every service the pipeline uses (S3, SQS, DynamoDB, SNS, CloudWatch). Its
state lives in that process's memory and is gone when it stops, like LocalStack's default.

Why a process and not a thread: moto spends real CPU per request (a 50-item index query is
~170 ms of Python), and in the stack's process it would share one GIL with the API and the
worker's dispatcher, so a browser polling the gallery would slow the whole pipeline down.

    python -m cli.local.aws --host 127.0.0.1 --port 0   # prints "port N", then serves

The child serves until its standard input closes (the parent stopped or died) or SIGTERM.

moto answers anyone who reaches its port, and a browser on this machine reaches it for any web
page: every request first passes ``guard`` (the rules of cli/local/guard.py). A loopback
``Host`` only (DNS rebinding); no browser request but from the stack's own pages (a form post
or a no-cors ``fetch`` needs no preflight); bodies bounded; moto's management API
(``/moto-api/...``: reset, state, seeding) only with the per-run token the stack holds; and
every answer with ``nosniff`` and a sandboxing Content-Security-Policy, so that an object
stored as ``text/html`` never runs as a page of this origin.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, Any
from xml.sax.saxutils import escape

from cli.local.guard import Refused, check_host, check_site, content_length
from processor.core.errors import StackError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Fake credentials for moto: set before any client exists so that nothing looks for real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
START_TIMEOUT_S = 60.0
# moto's server answers every origin's CORS preflight by default: any web page the user has
# open could then read and write the embedded AWS. Off, the bucket's own CORS rules (the
# template's, or the gallery's origin) are all a browser gets. moto reads it at import.
NO_GLOBAL_CORS = {"MOTO_DISABLE_GLOBAL_CORS": "true"}
# What the child is told about its guard (JSON in its environment, readable by this user only).
GUARD_ENV = "IMGPIPE_AWS_GUARD"
MANAGEMENT_PREFIX = "/moto-api"  # moto's own dispatch rule for its management API
MANAGEMENT_HEADER = "x-imgpipe-management"
# The largest body when none is given: S3's own limit for one PUT (5 GiB).
DEFAULT_MAX_BODY_BYTES = 5 * 1024**3
# Bodies past this go to a temporary file while a chunked request is measured.
SPOOL_BYTES = 1024 * 1024
# On every answer: an object stored as text/html or SVG is inert, opened or embedded.
RESPONSE_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; sandbox"),
]


@dataclass(frozen=True)
class GuardConfig:
    pages: frozenset[str]  # origins of the stack's own pages (the gallery's): browsers' only
    management_token: str  # opens /moto-api/... (the stack's own calls, e.g. a reset)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    bound: str = LOOPBACK  # the address the server listens on: a name it answers to

    def to_env(self) -> str:
        return json.dumps(
            {
                "pages": sorted(self.pages),
                "management_token": self.management_token,
                "max_body_bytes": self.max_body_bytes,
                "bound": self.bound,
            }
        )

    @classmethod
    def from_env(cls, text: str | None, bound: str) -> GuardConfig:
        if not text:  # started by hand: tools only, management closed to everyone
            return cls(frozenset(), secrets.token_urlsafe(32), bound=bound)
        data = json.loads(text)
        return cls(
            pages=frozenset(data["pages"]),
            management_token=str(data["management_token"]),
            max_body_bytes=int(data["max_body_bytes"]),
            bound=str(data["bound"]),
        )


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def guard(app: WsgiApp, config: GuardConfig) -> WsgiApp:
    """``app`` behind the checks the module docstring lists (WSGI middleware)."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def with_headers(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            return start_response(status, [*headers, *RESPONSE_HEADERS], *rest)

        try:
            check_request(environ, config)
        except Refused as refused:
            return _refusal(refused, with_headers)
        return app(environ, with_headers)

    return guarded


def check_request(environ: dict[str, Any], config: GuardConfig) -> None:
    """Refused unless a loopback name, a page of the stack (or no page), a bounded body and,
    for the management API, the token. A chunked body is read here (to the bound) and handed
    on with its length."""

    def header(name: str) -> str | None:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"))
        return None if value is None else str(value)

    check_host(header("host"), (config.bound,))
    check_site(header, config.pages)
    if str(environ.get("PATH_INFO", "")).startswith(MANAGEMENT_PREFIX):
        given = header(MANAGEMENT_HEADER) or ""
        if not hmac.compare_digest(given.encode(), config.management_token.encode()):
            raise Refused(403, "management_closed", "moto's management API is closed")
    length = content_length(environ.get("CONTENT_LENGTH") or None, config.max_body_bytes)
    if length is None and "chunked" in (header("transfer-encoding") or "").lower():
        _measure_chunked(environ, config.max_body_bytes)


def _measure_chunked(environ: dict[str, Any], limit: int) -> None:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed on
    source = environ["wsgi.input"]
    size = 0
    while chunk := source.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            spool.close()
            raise Refused(413, "too_large", f"the body is over {limit} bytes")
        spool.write(chunk)
    spool.seek(0)
    environ["wsgi.input"] = spool
    environ["CONTENT_LENGTH"] = str(size)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)


def _refusal(refused: Refused, start_response: Callable[..., Any]) -> list[bytes]:
    """S3's error shape, which every AWS SDK reads, with the reason in ``Message``."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
        f"{escape(refused.code)}</Code><Message>{escape(refused.reason)}</Message></Error>"
    ).encode()
    status = f"{refused.status} {HTTPStatus(refused.status).phrase}"
    headers = [
        ("Content-Type", "application/xml"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ]
    start_response(status, headers)
    return [body]


class _RemovedKey:
    """What moto's event builder reads of a key (a delete marker has no bytes)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.etag = ""
        self.size = 0


def send_delete_marker_events() -> None:
    """Make moto's S3 send ``s3:ObjectRemoved:DeleteMarkerCreated`` as S3 does.

    moto 5 sends no event at all when a delete in a versioned bucket only adds a delete
    marker (the common delete there), so a versioned local bucket would never tell the
    processor that an image was deleted. Idempotent; affects this process's moto only.
    """
    from moto.s3 import models, notifications

    backend = models.S3Backend
    if getattr(backend, "_imgpipe_marker_events", False):
        return
    original = backend._set_delete_marker

    def set_delete_marker(self: Any, bucket_name: str, key_name: str) -> Any:
        marker = original(self, bucket_name, key_name)
        notifications.send_event(
            self.account_id,
            notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
            self.get_bucket(bucket_name),
            _RemovedKey(key_name),
        )
        return marker

    backend._set_delete_marker = set_delete_marker  # type: ignore[method-assign]  # wrapped, once
    backend._imgpipe_marker_events = True  # type: ignore[attr-defined]  # our marker


def answer_form_posts_with_cors() -> None:
    """Give moto's presigned-POST answer the bucket's CORS headers, as S3 does.

    moto adds them to every other object response, but not to a form POST; with its global
    CORS off (``NO_GLOBAL_CORS``) a browser could then not read the answer of an upload it
    was allowed to make. Idempotent; affects this process's moto only.
    """
    from moto.s3 import responses

    handler = responses.S3Response
    if getattr(handler, "_imgpipe_post_cors", False):
        return
    original = handler._bucket_response_post

    def bucket_response_post(self: Any, request: Any, bucket_name: str) -> Any:
        status, headers, body = original(self, request, bucket_name)
        return status, {**self._get_cors_headers_other(), **headers}, body

    handler._bucket_response_post = bucket_response_post  # type: ignore[method-assign]  # wrapped, once
    handler._imgpipe_post_cors = True  # type: ignore[attr-defined]  # our marker


class EmbeddedAws:
    """moto's server in a child process: ``start()`` returns its URL, ``stop()`` ends it."""

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 4566,
        *,
        pages: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.guard = GuardConfig(
            pages=frozenset(pages),
            management_token=secrets.token_urlsafe(32),
            max_body_bytes=max_body_bytes,
            bound=host,
        )
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        env = {
            **os.environ,
            **FAKE_CREDENTIALS,
            **NO_GLOBAL_CORS,
            "PYTHONUNBUFFERED": "1",
            GUARD_ENV: self.guard.to_env(),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, "--host", self.host, "--port", str(self.port)],
            stdin=subprocess.PIPE,  # the lifeline: closed when this process ends, however
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self._process = process
        assert process.stdout is not None
        line = _read_line(process.stdout, START_TIMEOUT_S)
        if not line.startswith("port "):
            self.stop()
            raise StackError(
                f"the embedded AWS did not start on {self.host}:{self.port} (see the log above)"
            )
        self.port = int(line.split()[1])  # the real one when 0 asked for any free port
        log.info("moto listening on %s (pid %d)", self.url, process.pid)
        return self.url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Empty every service (moto's management API, which only this object may call)."""
        request = urllib.request.Request(
            f"{self.url}{MANAGEMENT_PREFIX}/reset",
            method="POST",
            headers={MANAGEMENT_HEADER: self.guard.management_token},
        )
        urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - our own loopback URL

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        log.info("moto stopped")


def _read_line(stream: IO[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            return stream.readline()
    return ""


def serve(host: str, port: int) -> int:
    os.environ.update(NO_GLOBAL_CORS)  # before moto is imported, however this was started
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    send_delete_marker_events()
    answer_form_posts_with_cors()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the stack, which stops us
    # werkzeug logs every request at INFO: far too chatty next to the API's own log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    config = GuardConfig.from_env(os.environ.pop(GUARD_ENV, None), host)
    # What moto's ThreadedMotoServer builds, behind the guard.
    app = guard(DomainDispatcherApplication(create_backend_app), config)
    try:
        server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as e:
        sys.stderr.write(f"cannot listen on {host}:{port}: {e.strerror}\n")
        return 2
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    # The parent reads this line to learn the port (the real one when 0 was asked for).
    sys.stdout.write(f"port {server.server_address[1]}\n")
    sys.stdout.flush()

    def lifeline() -> None:
        sys.stdin.read()  # returns at EOF: the parent is gone
        done.set()

    threading.Thread(target=lifeline, daemon=True).start()
    while not done.wait(0.5):
        pass
    server.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto's server for the local stack")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
