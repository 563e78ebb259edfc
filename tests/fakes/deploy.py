"""A fake of the deploy's own ports (infra/deploy/images.py ``ContainerBuilder`` and
``ManifestReader``): Docker is the one part the deploy tests replace. Like a real push, the fake
puts the image manifest into ECR (moto's, in the tests), and reads back what it pushed.

``run`` is the command as `make deploy` runs it, with this builder."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3

from infra.deploy import preflight
from infra.deploy.cli import main
from infra.registry import OCI_ARCHITECTURES, PushedImage
from tests.infra.conftest import ACCOUNT, REGION

REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1,
            "digest": "sha256:" + "0" * 64,
        },
        "layers": [],
    }
)


class FakeBuilder:
    """ContainerBuilder that records calls; push lands the image in ECR as Docker would."""

    def __init__(self, pushed_architecture: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # What the registry reports for every image (OCI name); None: what was asked for.
        self.pushed_architecture = pushed_architecture

    def build(
        self,
        *,
        dockerfile: Path,
        context: Path,
        image: str,
        architecture: str,
        labels: Any,
    ) -> None:
        self.calls.append(
            (
                "build",
                {
                    "dockerfile": dockerfile,
                    "context": context,
                    "image": image,
                    "arch": architecture,
                    "labels": dict(labels),
                },
            )
        )

    def login(self, *, registry: str, username: str, password: str) -> None:
        self.calls.append(
            ("login", {"registry": registry, "username": username, "password": password})
        )

    def push(self, image: str) -> None:
        self.calls.append(("push", {"image": image}))
        host, _, path = image.partition("/")
        repository, _, tag = path.rpartition(":")
        region = host.split(".")[3]  # <account>.dkr.ecr.<region>.amazonaws.com
        boto3.client("ecr", region_name=region).put_image(
            repositoryName=repository, imageManifest=MANIFEST, imageTag=tag
        )

    def pushed(self, image: str, *, architecture: str, username: str, password: str) -> PushedImage:
        """ManifestReader: the registry's answer for a pushed image."""
        self.calls.append(("read", {"image": image, "username": username}))
        return PushedImage(
            uri=image,
            digest="sha256:" + "0" * 64,
            media_type="application/vnd.docker.distribution.manifest.v2+json",
            os="linux",
            architecture=self.pushed_architecture or OCI_ARCHITECTURES[architecture],
            labels={},
            size=1,
            layers=0,
        )

    def names(self) -> list[str]:
        return [name for name, _ in self.calls if name != "read"]


# An account past its first days: Lambda's default quota of 1000, nothing reserved.
ESTABLISHED = preflight.AccountConcurrency(limit=1000, unreserved=1000)


def run(argv: list[str], builder: Any, **kwargs: Any) -> tuple[int, str]:
    """The command as `make deploy` runs it; moto lacks lambda:GetAccountSettings, so the
    account's concurrency comes from ``account`` (default: an established account)."""
    account = kwargs.pop("account", ESTABLISHED)
    kwargs.setdefault("concurrency_reader", lambda session: account)
    out = io.StringIO()
    if isinstance(builder, FakeBuilder):
        kwargs.setdefault("manifests", builder)
    code = main(argv, builder=builder, out=out, **kwargs)
    return code, out.getvalue()
