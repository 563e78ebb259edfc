"""The images: built with Docker, pushed to ECR (or --registry), read back and checked.

Docker sits behind ``ContainerBuilder`` and the registry's HTTP API behind ``ManifestReader``
so that tests run the whole deploy against moto with fakes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from infra.deploy.plan import PLATFORMS, REPO_ROOT, Plan
from infra.errors import DeployError
from infra.registry import OCI_ARCHITECTURES, PushedImage, RegistryClient, RegistryError


class ContainerBuilder(Protocol):
    """The only Docker calls the deploy makes. ``DockerCli`` shells out; tests pass a fake."""

    def build(
        self,
        *,
        dockerfile: Path,
        context: Path,
        image: str,
        architecture: str,
        labels: Mapping[str, str],
    ) -> None: ...

    def login(self, *, registry: str, username: str, password: str) -> None: ...

    def push(self, image: str) -> None: ...


class ManifestReader(Protocol):
    """Reads back a pushed image (``RegistryClient`` over HTTP; tests of the plan pass a fake)."""

    def pushed(self, image: str, *, architecture: str, username: str, password: str) -> PushedImage:
        """``architecture`` is Lambda's name (arm64, x86_64)."""
        ...


class HttpManifests:
    """ManifestReader on the registry's HTTP API (ECR's, or any Docker registry)."""

    def pushed(self, image: str, *, architecture: str, username: str, password: str) -> PushedImage:
        client = RegistryClient(username, password)
        try:
            return client.image(image, OCI_ARCHITECTURES[architecture])
        except RegistryError as e:
            raise DeployError(f"cannot read back {image}: {e}") from e


class DockerCli:
    """ContainerBuilder on the `docker` command line (needs a reachable Docker engine).

    ``base_image`` builds on another Lambda base than the Dockerfiles' pinned one (a mirror,
    or the image tests' stand-in); ``network`` is `docker build --network` (an engine
    without a bridge network needs "host"). The engine is the one DOCKER_HOST names.
    """

    def __init__(
        self, docker: str = "docker", *, base_image: str | None = None, network: str | None = None
    ) -> None:
        self.docker = docker
        self.base_image = base_image
        self.network = network
        self._checked = False

    def _run(self, args: Sequence[str], stdin: str | None = None) -> None:
        try:
            subprocess.run([self.docker, *args], input=stdin, text=True, check=True)
        except FileNotFoundError as e:
            raise DeployError(f"`{self.docker}` is not installed") from e
        except subprocess.CalledProcessError as e:
            raise DeployError(
                f"`{self.docker} {args[0]}` failed with exit code {e.returncode}"
            ) from e

    def _engine(self) -> None:
        if self._checked:
            return
        probe = subprocess.run(
            [self.docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode != 0:
            raise DeployError(
                "no Docker engine is reachable (only the client is installed?): build where an "
                "engine runs. `python -m infra.deploy deploy --dry-run` shows the plan."
            )
        self._checked = True

    def build(
        self,
        *,
        dockerfile: Path,
        context: Path,
        image: str,
        architecture: str,
        labels: Mapping[str, str],
    ) -> None:
        self._engine()
        self._run(build_args(dockerfile, context, image, architecture, labels, self))

    def login(self, *, registry: str, username: str, password: str) -> None:
        self._engine()
        # The password goes through stdin, never argv (visible to other users in `ps`).
        self._run(["login", "--username", username, "--password-stdin", registry], stdin=password)

    def push(self, image: str) -> None:
        self._engine()
        self._run(["push", image])


def build_args(
    dockerfile: Path,
    context: Path,
    image: str,
    architecture: str,
    labels: Mapping[str, str],
    cli: DockerCli,
    environ: Mapping[str, str] = os.environ,
) -> list[str]:
    """`docker build` arguments; only ``base_image`` and ``network`` vary between machines."""
    args = ["build", "--platform", PLATFORMS[architecture], "--build-arg", f"ARCH={architecture}"]
    if cli.base_image:
        args += ["--build-arg", f"BASE_IMAGE={cli.base_image}"]
    if cli.network:
        args += ["--network", cli.network]
    # Lambda rejects the attestation manifests buildx adds by default; the legacy builder
    # (DOCKER_BUILDKIT=0) makes none and does not know the flag.
    if environ.get("DOCKER_BUILDKIT") != "0":
        args.append("--provenance=false")
    for key, value in sorted(labels.items()):
        args += ["--label", f"{key}={value}"]
    return [*args, "--file", str(dockerfile), "--tag", image, str(context)]


def ensure_repository(ecr: Any, name: str, out: TextIO) -> None:
    try:
        ecr.describe_repositories(repositoryNames=[name])
        out.write(f"repository   {name} exists\n")
        return
    except Exception as e:
        from processor.aws.errors import error_code  # botocore is loaded by now

        if error_code(e) != "RepositoryNotFoundException":
            raise
    ecr.create_repository(
        repositoryName=name,
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "AES256"},
    )
    out.write(f"repository   {name} created\n")


# Each deploy adds a tag with this prefix to the images the stack will run. ECR's lifecycle
# gives an image to the first rule (by priority) whose tags select it, and a lower rule never
# expires it: the deployed images answer only to the first rule, which keeps the last few
# deploys, so the count rule for everything else (builds never deployed) cannot expire the
# image a function still runs.
DEPLOYED_PREFIX = "deployed-"
KEEP_DEPLOYED = 5
KEEP_OTHERS = 20


def lifecycle_policy() -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the images of the last {KEEP_DEPLOYED} deploys",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": [DEPLOYED_PREFIX],
                    "countType": "imageCountMoreThan",
                    "countNumber": KEEP_DEPLOYED,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the last {KEEP_OTHERS} images never deployed",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": KEEP_OTHERS,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def mark_deployed(ecr: Any, repository: str, tag: str, when: str) -> str | None:
    """Tag the image ``tag`` names as deployed (tags are immutable: a new tag each deploy),
    and (re)apply the lifecycle policy that keeps it. Returns the new tag; None when ECR's
    API does not list the image (a registry other than ECR's took the push)."""
    new_tag = f"{DEPLOYED_PREFIX}{when}"
    images = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    if not images["images"]:
        return None
    image = images["images"][0]
    media = image.get("imageManifestMediaType")
    try:
        ecr.put_image(
            repositoryName=repository,
            imageManifest=image["imageManifest"],
            imageTag=new_tag,
            **({"imageManifestMediaType": media} if media else {}),
        )
    except Exception as e:
        from processor.aws.errors import error_code  # botocore is loaded by now

        # A redeploy of the same image within the same second: the tag is already this
        # image's (another image under it would be ImageTagAlreadyExistsException).
        if error_code(e) != "ImageAlreadyExistsException":
            raise
    ecr.put_lifecycle_policy(
        repositoryName=repository, lifecyclePolicyText=json.dumps(lifecycle_policy())
    )
    return new_tag


def image_exists(ecr: Any, repository: str, tag: str) -> bool:
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except Exception as e:
        from processor.aws.errors import error_code  # botocore is loaded by now

        if error_code(e) == "ImageNotFoundException":
            return False
        raise
    return bool(found.get("imageDetails"))


def registry_credentials(ecr: Any) -> tuple[str, str]:
    """(username, password) from ECR's authorisation token, for `docker login` and reads."""
    auth = ecr.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    return username, password


def check_pushed(pushed: PushedImage, plan: Plan) -> None:
    """The image in the registry must run where the stack's functions run, and be this build.

    Checked on what the registry holds, not on the local build: a tag pushed earlier from
    another machine (an x86 laptop without --platform) is caught here, before the stack
    points a function at it; Lambda would only fail when it first starts the image.
    """
    wanted = OCI_ARCHITECTURES[plan.architecture]
    if pushed.index:
        raise DeployError(
            f"{pushed.uri} is a multi-platform manifest list, which Lambda refuses: build one "
            f"platform (--platform linux/{wanted} --provenance=false, as `python -m "
            "infra.deploy build` does) and push it under a new tag"
        )
    if (pushed.os, pushed.architecture) != ("linux", wanted):
        raise DeployError(
            f"{pushed.uri} is {pushed.os}/{pushed.architecture}, but the stack's functions run "
            f"linux/{wanted} (Architecture={plan.architecture}): build it with --architecture "
            f"{plan.architecture}, or deploy with the architecture it was built for"
        )


def publish_images(
    ecr: Any,
    builder: ContainerBuilder,
    plan: Plan,
    out: TextIO,
    manifests: ManifestReader | None = None,
) -> dict[str, PushedImage]:
    """Build and push what the registry lacks, then read every image back and check it."""
    for image in plan.images:
        ensure_repository(ecr, image.repository, out)
    username, password = registry_credentials(ecr)
    missing = []
    for image in plan.images:
        if image_exists(ecr, image.repository, plan.tag):
            # Tags are immutable and name the commit: the image in ECR is this code already.
            out.write(f"image        {image.uri} already in ECR\n")
        else:
            missing.append(image)
    if missing:  # a parameter-only redeploy needs no Docker at all
        builder.login(registry=plan.registry, username=username, password=password)
    for image in missing:
        out.write(f"build        {image.name} ({plan.architecture})\n")
        builder.build(
            dockerfile=image.dockerfile,
            context=REPO_ROOT,
            image=image.uri,
            architecture=plan.architecture,
            labels=plan.labels,
        )
        out.write(f"push         {image.uri}\n")
        builder.push(image.uri)
    reader = manifests or HttpManifests()
    pushed = {}
    for image in plan.images:
        found = reader.pushed(
            image.uri, architecture=plan.architecture, username=username, password=password
        )
        check_pushed(found, plan)
        out.write(
            f"manifest     {image.uri}: {found.os}/{found.architecture}, "
            f"{found.size / 1e6:.0f} MB in {found.layers} layers, {found.digest}\n"
        )
        pushed[image.name] = found
    when = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for image in plan.images:
        kept = mark_deployed(ecr, image.repository, plan.tag, when)
        if kept is None:
            out.write(
                f"image        {image.repository}:{plan.tag} is not listed by ECR's API: not "
                "marked deployed (the lifecycle policy may expire it)\n"
            )
        else:
            out.write(f"image        {image.repository}:{kept} (kept by the lifecycle policy)\n")
    return pushed
