"""A tag that names a multi-platform list is refused before the stack: Lambda refuses it too.

The registry is a stand-in on 127.0.0.1 that answers the three reads the deploy makes
(manifest by tag, manifest by digest, config blob) as a Docker registry does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from infra import template as tpl
from infra.deploy.images import check_pushed
from infra.deploy.plan import make_plan
from infra.errors import DeployError
from infra.registry import RegistryClient

pytestmark = pytest.mark.integration

SINGLE = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = {"os": "linux", "architecture": "arm64", "config": {"Labels": {}}}
IMAGE = {
    "schemaVersion": 2,
    "mediaType": SINGLE,
    "config": {"digest": "sha256:" + "c" * 64, "size": 10},
    "layers": [{"digest": "sha256:" + "d" * 64, "size": 100}],
}
LIST = {
    "schemaVersion": 2,
    "mediaType": INDEX,
    "manifests": [
        {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    ],
}


class Registry(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path
        if path.endswith("/manifests/multi"):
            body, kind = LIST, INDEX
        elif "/manifests/" in path:
            body, kind = IMAGE, SINGLE
        else:
            body, kind = CONFIG, "application/json"
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Docker-Content-Digest", "sha256:" + "e" * 64)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _plan() -> object:
    return make_plan(
        stack_name="imgpipe",
        region="eu-west-1",
        account="123456789012",
        tag="abc",
        architecture="arm64",
        template=tpl.TEMPLATE_PATH,
        extra_parameters={},
        alert_email="a@b.co",
    )


def test_a_single_platform_image_passes(registry: str) -> None:
    found = RegistryClient().image(f"{registry}/imgpipe/processor:single", "arm64")
    assert not found.index
    check_pushed(found, _plan())  # type: ignore[arg-type]


def test_a_manifest_list_is_refused_even_with_the_right_platform_in_it(registry: str) -> None:
    found = RegistryClient().image(f"{registry}/imgpipe/processor:multi", "arm64")
    assert found.index and found.architecture == "arm64"
    with pytest.raises(DeployError, match="multi-platform manifest list"):
        check_pushed(found, _plan())  # type: ignore[arg-type]
