"""What a deploy will do, decided from the options alone: images, tag, parameters.

Pure: no boto3, no subprocess (an import-linter contract in pyproject.toml keeps it so), so
the rules are tested without AWS or Docker and ``--dry-run`` prints exactly what a deploy uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import DeployError
from infra.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
PLATFORMS = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}
# The bucket is named "<stack>-<account>-<region>": S3 allows 63 lowercase characters.
STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
ACCOUNT_PLACEHOLDER = "<account>"
# Parameters deploy derives from others; --parameter may not set them.
DERIVED = {"ProcessorEphemeralStorage": "MaxUploadBytes"}


@dataclass(frozen=True)
class ImageSpec:
    name: str  # "processor" or "api": the repository suffix
    dockerfile: str  # relative to the repository root
    parameter: str  # template parameter that receives the image URI


IMAGES = (
    ImageSpec("processor", "docker/processor.Dockerfile", "ProcessorImageUri"),
    ImageSpec("api", "docker/api.Dockerfile", "ApiImageUri"),
)


@dataclass(frozen=True)
class PlannedImage:
    name: str
    dockerfile: Path
    repository: str
    uri: str
    parameter: str


@dataclass(frozen=True)
class Plan:
    stack_name: str
    region: str
    account: str
    tag: str
    architecture: str
    template: Path
    images: tuple[PlannedImage, ...]
    # Parameters this deploy sets; the others keep their previous value on update and their
    # template default on create.
    parameters: Mapping[str, str] = field(default_factory=dict)
    # Where images are pushed: the account's ECR registry unless --registry says otherwise.
    registry: str = ""
    # OCI labels every image carries (revision, version).
    labels: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [
            f"stack        {self.stack_name} in {self.region} (account {self.account})",
            f"template     {self.template}",
            f"architecture {self.architecture} ({PLATFORMS[self.architecture]})",
            f"tag          {self.tag}",
            f"registry     {self.registry}",
        ]
        for image in self.images:
            lines.append(f"image        {image.name}: {image.dockerfile} -> {image.uri}")
            lines.append(
                f"repository   {image.repository} (created if missing: scan on push, "
                "immutable tags)"
            )
        for key, value in sorted(self.parameters.items()):
            lines.append(f"parameter    {key}={value}")
        lines.append("parameter    (others: previous value on update, template default on create)")
        return "\n".join(lines)


def image_tag(commit: str, architecture: str) -> str:
    """The default tag, ``<commit>-<architecture>``: an arm64 and an x86_64 build of one commit
    are two images, and ECR's immutable tags must never have to name both."""
    return f"{commit}-{architecture}"


def image_labels(revision: str) -> dict[str, str]:
    """OCI labels of both images: which commit and which release they hold."""
    return {
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.version": _project_version(),
    }


def _project_version() -> str:
    import tomllib

    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return str(tomllib.loads(text)["project"]["version"])


def registry_host(account: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


def make_plan(
    *,
    stack_name: str,
    region: str,
    account: str,
    tag: str,
    architecture: str,
    template: Path,
    extra_parameters: Mapping[str, str],
    alert_email: str | None,
    declared: Sequence[str] | None = None,
    registry: str | None = None,
    revision: str | None = None,
) -> Plan:
    """Everything deploy will do, decided from the options alone.

    ``declared`` (the template's parameter names) catches a misspelt --parameter before a
    ten-minute image build rather than after it.
    """
    if not STACK_NAME.match(stack_name):
        raise DeployError(
            f"stack name {stack_name!r}: use 1-30 lowercase letters, digits or '-', starting "
            "with a letter (it becomes part of the bucket name)"
        )
    if architecture not in PLATFORMS:
        raise DeployError(f"architecture {architecture!r}: use one of {sorted(PLATFORMS)}")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", tag):
        raise DeployError(f"image tag {tag!r} is not a valid Docker tag")
    host = registry or registry_host(account, region)
    images = tuple(
        PlannedImage(
            name=spec.name,
            dockerfile=REPO_ROOT / spec.dockerfile,
            repository=f"{stack_name}/{spec.name}",
            uri=f"{host}/{stack_name}/{spec.name}:{tag}",
            parameter=spec.parameter,
        )
        for spec in IMAGES
    )
    parameters = {image.parameter: image.uri for image in images}
    parameters["Architecture"] = architecture
    if alert_email:
        parameters["AlertEmail"] = alert_email
    for key, value in extra_parameters.items():
        if key in parameters:
            raise DeployError(f"--parameter {key} is set by deploy itself; use its own option")
        if key in DERIVED:
            raise DeployError(f"--parameter {key} is set by deploy from {DERIVED[key]}")
        parameters[key] = value
    if declared is not None:
        unknown = set(parameters) - set(declared)
        if unknown:
            raise DeployError(f"the template declares no parameter {sorted(unknown)}")
    return Plan(
        stack_name=stack_name,
        region=region,
        account=account,
        tag=tag,
        architecture=architecture,
        template=template,
        images=images,
        parameters=parameters,
        registry=host,
        labels=image_labels(revision or tag),
    )


def template_defaults(template: Path) -> dict[str, str | None]:
    """Every declared parameter and its default as text (None: the parameter has none)."""
    declared = load_template(template).get("Parameters", {})
    return {k: str(v["Default"]) if "Default" in v else None for k, v in declared.items()}


def stack_parameters(
    plan: Plan, defaults: Mapping[str, str | None], previous: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """CloudFormation Parameters: ours, and on an update the stack's previous values.

    ``defaults`` maps every declared parameter to its template default (None: no default);
    ``previous`` is the existing stack's parameters (None: a new stack). Without
    UsePreviousValue an update silently resets every parameter it does not pass (the alert
    address, memory sizes) to the template default. A previous value equal to the current
    default is left to the default, which is the same value.
    """
    unknown = set(plan.parameters) - set(defaults)
    if unknown:
        raise DeployError(f"the template declares no parameter {sorted(unknown)}")
    params: list[dict[str, Any]] = [
        {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(plan.parameters.items())
    ]
    if previous is None:
        missing = sorted(k for k, v in defaults.items() if v is None and k not in plan.parameters)
        if missing:
            hint = " (--alert-email or IMGPIPE_ALERT_EMAIL)" if "AlertEmail" in missing else ""
            raise DeployError(f"a new stack needs values for {missing}{hint}")
        return params
    for key, value in sorted(previous.items()):
        if key in plan.parameters or key not in defaults or value == defaults[key]:
            continue
        params.append({"ParameterKey": key, "UsePreviousValue": True})
    return params
