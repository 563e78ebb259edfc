"""A loopback HTTP proxy in front of moto that can make one S3 object fail like S3 does.

A transient fault has to reach the function inside its container over the network, since
nothing can be patched in there. Armed with an object key, the proxy answers every request
for that object with S3's 503 SlowDown (what S3 says when a prefix is over its request rate),
so the processor's retries run out and it must hand the message back to SQS. ``stall``
holds the next reads of an object for longer than the function may run, so the invocation is
stopped at its timeout. Everything else is passed to moto unchanged.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.failing: str | None = None  # "/bucket/key" of the object that fails
        self.faults = 0  # requests answered with SlowDown
        # "/bucket/key" -> GETs of it still to hold, and for how long (s)
        self.stalling: dict[str, int] = {}
        self.stall_s = 0.0
        self.stalls = 0  # GETs held
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, bucket: str, key: str | None) -> None:
        self.failing = f"/{bucket}/{key}" if key else None

    def stall(self, bucket: str, key: str, *, times: int, seconds: float) -> None:
        """Hold the next ``times`` GETs of the object ``seconds`` each, then drop them."""
        self.stalling[f"/{bucket}/{key}"] = times
        self.stall_s = seconds

    def _stalled(self, method: str, path: str) -> bool:
        with self._lock:
            if method != "GET" or self.stalling.get(path, 0) <= 0:
                return False
            self.stalling[path] -= 1
            self.stalls += 1
        self._released.wait(self.stall_s)
        return True

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # held requests end now
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _forward(self) -> None:
                body = self._read_body()
                path = urllib.parse.urlsplit(self.path).path
                if proxy._stalled(self.command, urllib.parse.unquote(path)):
                    self.close_connection = True  # no answer: the reader was stopped anyway
                    return
                if proxy.failing and urllib.parse.unquote(path) == proxy.failing:
                    proxy.faults += 1
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
                }
                connection = http.client.HTTPConnection(*proxy._upstream, timeout=120)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                finally:
                    connection.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
