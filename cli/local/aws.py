"""An embedded AWS for the local stack: moto's server, on loopback, in a process of its own.

One endpoint serves every service the pipeline uses (S3, SQS, DynamoDB, SNS, CloudWatch). Its
state lives in that process's memory and is gone when it stops, like LocalStack's default.

Why a process and not a thread: moto spends real CPU per request (a 50-item index query is
~170 ms of Python), and in the stack's process it would share one GIL with the API and the
worker's dispatcher, so a browser polling the gallery would slow the whole pipeline down.

    python -m cli.local.aws --host 127.0.0.1 --port 0   # prints "port N", then serves

The child serves until its standard input closes (the parent stopped or died) or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

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

    def __init__(self, host: str = LOOPBACK, port: int = 4566) -> None:
        self.host = host
        self.port = port
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        env = {**os.environ, **FAKE_CREDENTIALS, **NO_GLOBAL_CORS, "PYTHONUNBUFFERED": "1"}
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
    from moto.server import ThreadedMotoServer

    send_delete_marker_events()
    answer_form_posts_with_cors()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the stack, which stops us
    # werkzeug logs every request at INFO: far too chatty next to the API's own log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    try:
        server.start()
    except OSError as e:
        sys.stderr.write(f"cannot listen on {host}:{port}: {e.strerror}\n")
        return 2
    # The parent reads this line to learn the port (the real one when 0 was asked for).
    sys.stdout.write(f"port {server.get_host_and_port()[1]}\n")
    sys.stdout.flush()

    def lifeline() -> None:
        sys.stdin.read()  # returns at EOF: the parent is gone
        done.set()

    threading.Thread(target=lifeline, daemon=True).start()
    while not done.wait(0.5):
        pass
    server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto's server for the local stack")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
