"""`make deploy`'s build-and-push steps for real: both images pushed to a registry and read back.

The registry is a real one on loopback (tests/containers/registry.py); ECR's own API (creating
the repositories, the login token) and CloudFormation stay moto's, since no account is at
hand. The deploy builds with the real Docker CLI, logs in, pushes, reads each manifest and
config back from the registry and checks the architecture before it creates the stack.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra import template as tpl
from infra.deploy import preflight
from infra.deploy.cli import main
from infra.deploy.plan import _project_version
from infra.registry import OCI_ARCHITECTURES, PushedImage, RegistryClient
from tests.containers import MARKS
from tests.containers.base import Base
from tests.containers.conftest import Built
from tests.containers.engine import DockerEngine
from tests.containers.registry import LocalRegistry
from tests.containers.report import Report
from tests.infra.conftest import MOTO_STAND_INS, MOTO_TYPES

pytestmark = [pytest.mark.image, *MARKS]

REGION = "us-east-1"


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    started = LocalRegistry().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def deployed(
    registry: LocalRegistry,
    engine: DockerEngine,
    base: Base,
    images: dict[str, Built],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, dict[str, PushedImage]]]:
    for key in ("DOCKER_HOST", "DOCKER_BUILDKIT"):
        monkeypatch.setenv(key, engine.env[key])
    # `docker login` writes its credentials here, not into the user's ~/.docker.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    template = tmp_path / "moto-template.json"
    template.write_text(
        json.dumps(tpl.subset_template(tpl.load_template(), MOTO_TYPES, MOTO_STAND_INS))
    )
    out = io.StringIO()
    with mock_aws():
        code = main(
            [
                "deploy",
                "--registry", registry.host,
                "--base-image", base.ref,
                "--network", "host",
                "--architecture", base.architecture,
                "--alert-email", "ops@example.com",
                "--template", str(template),
            ],
            out=out,
            # moto has no lambda:GetAccountSettings: an established account's quota.
            concurrency_reader=lambda session: preflight.AccountConcurrency(1000, 1000),
        )  # fmt: skip
        text = out.getvalue()
        assert code == 0, text
        (stack,) = boto3.client("cloudformation").describe_stacks(StackName="imgpipe")["Stacks"]
        params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    uris = {"processor": params["ProcessorImageUri"], "api": params["ApiImageUri"]}
    for uri in uris.values():
        engine.built(uri)  # the pushed tags, removed at the end on an engine we were given
    client = RegistryClient()
    arch = OCI_ARCHITECTURES[base.architecture]
    yield text, {name: client.image(uri, arch) for name, uri in uris.items()}


def test_deploy_pushes_both_images_and_checks_what_the_registry_holds(
    deployed: tuple[str, dict[str, PushedImage]],
    registry: LocalRegistry,
    base: Base,
    images: dict[str, Built],
    report: Report,
) -> None:
    out, pushed = deployed
    for name, image in pushed.items():
        # The stack runs what was pushed: this registry, the commit-and-architecture tag.
        assert image.uri.startswith(f"{registry.host}/imgpipe/{name}:")
        assert image.uri.endswith(f"-{base.architecture}")
        assert f"manifest     {image.uri}: linux/{image.architecture}" in out
        assert (image.os, image.architecture) == ("linux", OCI_ARCHITECTURES[base.architecture])
        assert image.media_type == "application/vnd.docker.distribution.manifest.v2+json"
        labels = image.labels
        assert labels["org.opencontainers.image.title"] == f"imgpipe-{name}"
        assert labels["org.opencontainers.image.licenses"] == "MIT"
        assert labels["org.opencontainers.image.version"] == _project_version()
        revision = labels["org.opencontainers.image.revision"]
        assert image.uri.rpartition(":")[2] == f"{revision}-{base.architecture}"
        # Compressed in the registry: smaller than on disk, and never empty.
        assert 0 < image.size < images[name].size
        assert image.layers >= 3
        report.add(f"{name}.pushed_mb", image.size / 1e6)
