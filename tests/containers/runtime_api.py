"""The Lambda Runtime API, served to a function container the way Lambda serves it.

The Runtime Interface Client in the image (awslambdaric) long-polls
``GET /2018-06-01/runtime/invocation/next`` for an event, then posts the handler's result to
``.../invocation/{id}/response`` or ``.../invocation/{id}/error``; a handler that cannot even
be imported posts ``.../init/error``. That is the whole contract between Lambda and a
container image, so a test that serves it and runs the image runs the image as Lambda does.

``invoke()`` queues one event and waits for its outcome. The server also notes when the
runtime first asked for work: the end of its cold start (Lambda's "Init Duration").
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


class InvocationError(Exception):
    """The function reported an error (or an init error) instead of a response."""

    def __init__(self, kind: str, payload: Any) -> None:
        super().__init__(f"{kind}: {payload}")
        self.kind = kind
        self.payload = payload


@dataclass
class Outcome:
    kind: str  # "response", "error" or "init_error"
    payload: Any
    seconds: float  # from handing the event out to the outcome posted


@dataclass
class _Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    given_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class RuntimeApi:
    """One function's Runtime API on 127.0.0.1 (any free port); one invocation at a time."""

    def __init__(self, function_arn: str, *, timeout_s: float = 120.0) -> None:
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self._pending: queue.Queue[_Invocation] = queue.Queue()
        self._active: dict[str, _Invocation] = {}
        self._lock = threading.Lock()
        self.first_poll_at: float | None = None  # time.monotonic() of the first /next
        self.init_error: Any = None
        self._init_failed = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """What AWS_LAMBDA_RUNTIME_API holds: host:port."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> RuntimeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def wait_ready(self, timeout_s: float) -> float:
        """Block until the runtime first polls for work; returns time.monotonic() then."""
        deadline = time.monotonic() + timeout_s
        while self.first_poll_at is None:
            if self._init_failed.is_set():
                raise InvocationError("init_error", self.init_error)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the runtime did not ask for work within {timeout_s} s")
            time.sleep(0.01)
        return self.first_poll_at

    def invoke(self, event: Any, *, timeout_s: float | None = None) -> Outcome:
        limit = timeout_s or self.timeout_s
        invocation = _Invocation(
            request_id=str(uuid.uuid4()),
            event=json.dumps(event).encode(),
            deadline_ms=int((time.time() + limit) * 1000),
        )
        self._pending.put(invocation)
        if not invocation.done.wait(limit + 5):
            raise TimeoutError(f"no response from the function within {limit} s")
        assert invocation.outcome is not None
        return invocation.outcome

    # --- the HTTP side ----------------------------------------------------------------------

    def _next(self) -> _Invocation:
        if self.first_poll_at is None:
            self.first_poll_at = time.monotonic()
        invocation = self._pending.get()
        invocation.given_at = time.monotonic()
        with self._lock:
            self._active[invocation.request_id] = invocation
        return invocation

    def _finish(self, request_id: str, kind: str, payload: Any) -> bool:
        with self._lock:
            invocation = self._active.pop(request_id, None)
        if invocation is None:
            return False
        invocation.outcome = Outcome(kind, payload, time.monotonic() - invocation.given_at)
        invocation.done.set()
        return True

    def _fail_init(self, payload: Any) -> None:
        self.init_error = payload
        self._init_failed.set()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
                pass  # one line per poll would bury the test's own output

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return raw.decode(errors="replace")

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(HTTPStatus.NOT_FOUND)
                    return
                invocation = api._next()
                self._reply(
                    HTTPStatus.OK,
                    invocation.event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                        "Lambda-Runtime-Trace-Id": (
                            "Root=1-00000000-000000000000000000000000;Sampled=0"
                        ),
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                if self.path == f"{PREFIX}/init/error":
                    api._fail_init(body)
                    self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')
                    return
                parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
                if len(parts) == 2 and parts[1] in ("response", "error"):
                    if api._finish(parts[0], parts[1], body):
                        self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')
                        return
                self._reply(HTTPStatus.NOT_FOUND)

        return Handler
