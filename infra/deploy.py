"""`python -m infra.deploy build|deploy [--dry-run]`: images to ECR, then the CloudFormation stack.

deploy: build both images (docker/), make the ECR repositories when missing (scan on push,
immutable tags), log Docker in with a token from boto3, push with tag = <commit>-<architecture>,
read each pushed manifest back and check its architecture, create or update the stack with
those image URIs, wait, print the outputs. `build` runs the same `docker build` alone.
``--dry-run`` prints the plan and touches neither AWS nor Docker. The region is --region, else
AWS_REGION, else AWS_DEFAULT_REGION or the profile's; credentials come from
AWS_PROFILE/--profile or ~/.aws.
Before changing anything it prints the account and region, reads the account's Lambda
concurrency quota, and looks for what an earlier failed create left behind (docs/deploy.md).

The plan is data made by a pure function; the executor is the only code that talks to AWS, and
Docker sits behind ``ContainerBuilder`` so tests run the whole command against moto with a fake.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from infra import preflight
from infra import template as tpl
from infra.errors import DeployError
from infra.registry import OCI_ARCHITECTURES, PushedImage, RegistryClient, RegistryError
from infra.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
# CloudFormation's limit for a template passed inline (TemplateBody); larger needs S3.
MAX_TEMPLATE_BODY_BYTES = 51_200
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


# ------------------------------------------------------------------ the plan (pure) ---------


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


# ------------------------------------------------------------------ git ---------------------


# What the images are built from (the .dockerignore allow-list and the Dockerfiles).
IMAGE_PATHS = ("pyproject.toml", ".dockerignore", "docker", "processor", "api")


def git_tag(
    repo: Path = REPO_ROOT,
    now: Callable[[], datetime] | None = None,
    paths: Sequence[str] = IMAGE_PATHS,
) -> str:
    """The commit's short hash, naming what the images hold.

    Changed or untracked files under ``paths`` would go into the image without being in the
    commit, so the tag gets a time suffix then: ECR tags are immutable, and the same tag must
    never name two different images.
    """

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, check=True
            )
        except (FileNotFoundError, subprocess.CalledProcessError) as e:
            raise DeployError(f"cannot read the git commit ({e}); pass --tag") from e
        return done.stdout.strip()

    sha = git("rev-parse", "--short=12", "HEAD")
    if git("status", "--porcelain", "--untracked-files=all", "--", *paths):
        stamp = (now or (lambda: datetime.now(UTC)))().strftime("%Y%m%d%H%M%S")
        return f"{sha}-dirty-{stamp}"
    return sha


# ------------------------------------------------------------------ the executor ------------


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
    # Old images cost storage; keep enough to roll back a few deploys.
    ecr.put_lifecycle_policy(
        repositoryName=name,
        lifecyclePolicyText=(
            '{"rules":[{"rulePriority":1,"description":"keep the last 20 images",'
            '"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":20},'
            '"action":{"type":"expire"}}]}'
        ),
    )
    out.write(f"repository   {name} created\n")


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
    return pushed


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except Exception as e:
        from processor.aws.errors import error_code  # botocore is loaded by now

        if error_code(e) == "ValidationError" and "does not exist" in str(e):
            return None
        raise
    return stacks[0] if stacks else None


def _failure_reasons(cfn: Any, name: str) -> str:
    try:
        events = preflight.stack_events(cfn, name)
    except Exception:  # the reasons are a courtesy; the failure itself is reported anyway
        return ""
    return "\n".join(preflight.failure_report(events))


def _wait(cfn: Any, waiter: str, name: str, delay: int) -> None:
    try:
        cfn.get_waiter(waiter).wait(
            StackName=name, WaiterConfig={"Delay": delay, "MaxAttempts": 3600 // delay}
        )
    except Exception as e:  # botocore WaiterError: the stack rolled back or timed out
        reasons = _failure_reasons(cfn, name)
        raise DeployError(f"stack {name}: {e}\n{reasons}".rstrip()) from e


def deploy_stack(
    cfn: Any, plan: Plan, template_body: str, out: TextIO, delay: int = 15
) -> dict[str, str]:
    """Create or update the stack, wait for it, and return its outputs."""
    defaults = template_defaults(plan.template)
    current = _stack(cfn, plan.stack_name)
    if current is not None and current["StackStatus"] == "ROLLBACK_COMPLETE":
        # A stack whose creation failed cannot be updated, only deleted and created again.
        # Its bucket and table went with the rollback (RetainExceptOnCreate); the run checked
        # for older leftovers before this.
        out.write(f"stack        {plan.stack_name} failed to create earlier; deleting it\n")
        reasons = _failure_reasons(cfn, plan.stack_name)
        if reasons:
            out.write(f"             it failed because:\n{reasons}\n")
        cfn.delete_stack(StackName=plan.stack_name)
        _wait(cfn, "stack_delete_complete", plan.stack_name, delay)
        current = None
    if current is not None and current["StackStatus"].endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {plan.stack_name} is {current['StackStatus']}; try again later")
    common = {
        "StackName": plan.stack_name,
        "TemplateBody": template_body,
        "Capabilities": ["CAPABILITY_IAM"],
        "Tags": [{"Key": "project", "Value": "imgpipe"}],
    }
    if current is None:
        out.write(f"stack        creating {plan.stack_name} (CloudFront takes minutes)\n")
        params = stack_parameters(plan, defaults, None)
        cfn.create_stack(**common, Parameters=params)
        _wait(cfn, "stack_create_complete", plan.stack_name, delay)
    else:
        params = stack_parameters(plan, defaults, _previous_parameters(current))
        out.write(f"stack        updating {plan.stack_name}\n")
        try:
            cfn.update_stack(**common, Parameters=params)
        except Exception as e:
            if "No updates are to be performed" not in str(e):
                raise
            out.write("stack        no changes\n")
        else:
            _wait(cfn, "stack_update_complete", plan.stack_name, delay)
    final = _stack(cfn, plan.stack_name) or {}
    return {o["OutputKey"]: o["OutputValue"] for o in final.get("Outputs", [])}


# ------------------------------------------------------------------ command line ------------


def _parse_parameters(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"--parameter {item!r}: use Key=Value")
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("build", "build both images locally (needs a Docker engine)"),
        ("deploy", "build, push to ECR and deploy the CloudFormation stack"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dry-run", action="store_true", help="print the plan; touch nothing")
        p.add_argument(
            "--stack-name",
            default=os.environ.get("IMGPIPE_STACK_NAME", "imgpipe"),
            help="%(default)s",
        )
        p.add_argument(
            "--architecture",
            default=os.environ.get("IMGPIPE_ARCHITECTURE", "arm64"),
            choices=sorted(PLATFORMS),
        )
        p.add_argument(
            "--tag", help="image tag, used as given (default: <git commit>-<architecture>)"
        )
        p.add_argument(
            "--base-image",
            help="build on this Lambda base instead of the Dockerfiles' pinned one (a mirror)",
        )
        p.add_argument(
            "--network", help="`docker build --network` (e.g. host, for an engine without a bridge)"
        )
        if name == "build":
            p.add_argument(
                "--image",
                action="append",
                choices=[spec.name for spec in IMAGES],
                help="build only this image (repeatable; default: both)",
            )
        if name == "deploy":
            p.add_argument(
                "--alert-email",
                default=os.environ.get("IMGPIPE_ALERT_EMAIL"),
                help="alarm e-mail (required for a new stack; IMGPIPE_ALERT_EMAIL)",
            )
            p.add_argument(
                "--parameter",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="any other template parameter, e.g. ProcessorMemory=3008 (repeatable)",
            )
            p.add_argument(
                "--region",
                help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION or the profile's)",
            )
            p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
            p.add_argument("--template", type=Path, default=TEMPLATE, help=argparse.SUPPRESS)
            # Push to another registry than the account's ECR (the image tests' local one);
            # ECR's API still creates the repositories and hands out the credentials.
            p.add_argument("--registry", help=argparse.SUPPRESS)
    return parser


def _session(profile: str | None, region: str | None) -> Any:
    import boto3  # heavy: only when AWS is actually needed

    return boto3.Session(profile_name=profile, region_name=region)


def main(
    argv: Sequence[str] | None = None,
    *,
    builder: ContainerBuilder | None = None,
    session_factory: Callable[[str | None, str | None], Any] = _session,
    concurrency_reader: preflight.ConcurrencyReader = preflight.read_account_concurrency,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    manifests: ManifestReader | None = None,
) -> int:
    stream = out or sys.stdout
    args = build_parser().parse_args(argv)
    context = _Context(
        builder or DockerCli(base_image=args.base_image, network=args.network),
        session_factory,
        concurrency_reader,
        os.environ if environ is None else environ,
        manifests,
    )
    try:
        return _run(args, context, stream)
    except DeployError as e:
        sys.stderr.write(f"deploy: {e}\n")
        return 1
    except Exception as e:
        # Credentials, permissions, throttling: AWS's own words are the useful part.
        if type(e).__module__.startswith("botocore"):
            sys.stderr.write(f"deploy: AWS: {e}\n")
            return 1
        raise


@dataclass(frozen=True)
class _Context:
    """What the command talks to; tests replace Docker and the quota reader, not AWS."""

    builder: ContainerBuilder
    session_factory: Callable[[str | None, str | None], Any]
    concurrency_reader: preflight.ConcurrencyReader
    environ: Mapping[str, str]
    manifests: ManifestReader | None = None  # None: the registry's HTTP API


def _run(args: argparse.Namespace, context: _Context, out: TextIO) -> int:
    builder = context.builder
    try:
        revision = git_tag()
    except DeployError:
        if not (args.dry_run or args.tag):
            raise
        # A plan can be shown before the first commit; a real deploy needs one (or a --tag).
        revision = args.tag or "no-commit-yet"
    tag = args.tag or image_tag(revision, args.architecture)
    if args.command == "build":
        for spec in IMAGES:
            if args.image and spec.name not in args.image:
                continue
            image = f"{args.stack_name}/{spec.name}:{tag}"
            out.write(f"build        {spec.dockerfile} -> {image} ({args.architecture})\n")
            if not args.dry_run:
                builder.build(
                    dockerfile=REPO_ROOT / spec.dockerfile,
                    context=REPO_ROOT,
                    image=image,
                    architecture=args.architecture,
                    labels=image_labels(revision),
                )
        return 0

    template_body = tpl.compact_body(args.template)
    if len(template_body.encode()) > MAX_TEMPLATE_BODY_BYTES:
        raise DeployError(
            f"{args.template} is over CloudFormation's {MAX_TEMPLATE_BODY_BYTES} bytes even as "
            "compact JSON"
        )
    extra = _parse_parameters(args.parameter)
    declared = list(load_template(args.template).get("Parameters", {}))

    choice = preflight.choose_region(args.region, context.environ)
    session = context.session_factory(args.profile, choice.region)
    if args.dry_run:
        # The session reads the region from the usual settings without a network call; the
        # account needs STS, so it stays a placeholder.
        plan = make_plan(
            stack_name=args.stack_name,
            region=session.region_name or "<region>",
            account=ACCOUNT_PLACEHOLDER,
            tag=tag,
            architecture=args.architecture,
            template=Path(args.template),
            extra_parameters=extra,
            alert_email=args.alert_email,
            declared=declared,
            registry=args.registry,
            revision=revision,
        )
        out.write("dry run: nothing is built, pushed or deployed\n" + plan.describe() + "\n")
        return 0

    if not session.region_name:
        raise DeployError("no AWS region: set AWS_REGION, a profile region, or --region")
    account = session.client("sts").get_caller_identity()["Account"]
    # Before anything changes: which account and region this is about to touch, and why.
    out.write(
        f"target       account {account}, region {session.region_name} (from {choice.source})\n"
    )
    plan = make_plan(
        stack_name=args.stack_name,
        region=session.region_name,
        account=account,
        tag=tag,
        architecture=args.architecture,
        template=Path(args.template),
        extra_parameters=extra,
        alert_email=args.alert_email,
        registry=args.registry,
        revision=revision,
    )
    cfn = session.client("cloudformation")
    current = _stack(cfn, plan.stack_name)
    plan = _preflight(plan, session, current, extra, context, out)
    out.write(plan.describe() + "\n")
    publish_images(session.client("ecr"), builder, plan, out, context.manifests)
    outputs = deploy_stack(cfn, plan, template_body, out)
    out.write("\noutputs\n")
    width = max((len(k) for k in outputs), default=0)
    for key, value in sorted(outputs.items()):
        out.write(f"  {key.ljust(width)}  {value}\n")
    if "TopicArn" in outputs:
        pending = preflight.pending_alert_subscriptions(session.client("sns"), outputs["TopicArn"])
        if pending:
            out.write(f"\n{pending}\n")
    return 0


def _preflight(
    plan: Plan,
    session: Any,
    current: Mapping[str, Any] | None,
    extra: Mapping[str, str],
    context: _Context,
    out: TextIO,
) -> Plan:
    """Checks that need the account, before any build or change; returns the final plan.

    Leftovers of an earlier failed create; parameters a new stack cannot do without; the
    ephemeral storage the upload limit needs; the account's concurrency; the template's Rules.
    """
    defaults = template_defaults(plan.template)
    if current is not None:
        stuck = preflight.stuck_stack_advice(current["StackStatus"], plan.stack_name, plan.region)
        if stuck:
            raise DeployError(stuck)
    creating = current is None or current["StackStatus"] == "ROLLBACK_COMPLETE"
    if creating:
        _refuse_leftovers(plan, session, failed_create=current is not None)
        # Parameters a new stack cannot do without fail now, not after ten minutes of building.
        stack_parameters(plan, defaults, None)
    previous = None if creating or current is None else _previous_parameters(current)
    values = preflight.effective_parameters(plan.parameters, defaults, previous)
    derived = {
        "ProcessorEphemeralStorage": str(
            preflight.ephemeral_storage_mb(int(values["MaxUploadBytes"]))
        )
    }
    chosen = set(extra) | {k for k, v in (previous or {}).items() if v != defaults.get(k)}
    fit = preflight.fit_concurrency(
        context.concurrency_reader(session),
        values,
        chosen=chosen,
        reserved_now=int((previous or {}).get("ReservedConcurrency", "0")),
    )
    out.write(f"concurrency  {fit.note}\n")
    parameters = {**plan.parameters, **derived, **fit.changes}
    broken = tpl.rule_violations(
        preflight.effective_parameters(parameters, defaults, previous), load_template(plan.template)
    )
    if broken:
        raise DeployError("the template's rules refuse these parameters: " + "; ".join(broken))
    return replace(plan, parameters=parameters)


def _previous_parameters(stack: Mapping[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def _refuse_leftovers(plan: Plan, session: Any, *, failed_create: bool) -> None:
    template = load_template(plan.template)
    if "Bucket" not in template["Resources"]:
        return
    bucket = tpl.resolve(
        tpl.properties(template, "Bucket")["BucketName"],
        {
            "AWS::StackName": plan.stack_name,
            "AWS::AccountId": plan.account,
            "AWS::Region": plan.region,
        },
        template,
    )
    leftovers = preflight.find_leftovers(
        session.client("s3"),
        session.client("dynamodb"),
        bucket=bucket,
        table_prefix=f"{plan.stack_name}-Table-",
    )
    if leftovers:
        cfn = session.client("cloudformation")
        reasons = _failure_reasons(cfn, plan.stack_name) if failed_create else ""
        raise DeployError(
            preflight.leftovers_message(
                plan.stack_name, plan.region, leftovers, reasons.splitlines()
            )
        )


if __name__ == "__main__":
    sys.exit(main())
