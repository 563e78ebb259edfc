"""An embedded AWS for the local stack: moto's server, on loopback, in this process.

One endpoint serves every service the pipeline uses (S3, SQS, DynamoDB, SNS, CloudWatch). Its
state lives in this process's memory and is gone when it stops, like LocalStack's default.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Fake credentials for moto: set before any client exists so that nothing looks for real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class EmbeddedAws:
    """moto's threaded server: ``start()`` returns its endpoint URL, ``stop()`` frees the port."""

    def __init__(self, host: str = LOOPBACK, port: int = 4566) -> None:
        self.host = host
        self.port = port
        self._server: Any = None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request at INFO: far too chatty next to the API's own log.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self._server = server
        self.port = server.get_host_and_port()[1]  # the real one when 0 asked for any free port
        log.info("moto listening on %s", self.url)
        return self.url

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        # ThreadedMotoServer.stop() ends serve_forever but leaves the socket open.
        inner = getattr(server, "_server", None)
        if inner is not None:
            inner.server_close()
        log.info("moto stopped")
