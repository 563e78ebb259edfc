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
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from infra.deploy import preflight
from infra.deploy.artifacts import MAX_TEMPLATE_BODY_BYTES, artifacts_bucket, template_source
from infra.deploy.images import ContainerBuilder, DockerCli, ManifestReader, publish_images
from infra.deploy.plan import (
    ACCOUNT_PLACEHOLDER,
    IMAGES,
    PLATFORMS,
    REPO_ROOT,
    TEMPLATE,
    image_labels,
    image_tag,
    make_plan,
)
from infra.deploy.source import git_tag
from infra.deploy.stack import (
    deploy_stack,
    describe_stack,
    pending_alert_subscriptions,
    template_body,
    write_outputs,
)
from infra.errors import DeployError
from infra.template import load_template


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
    try:
        revision = git_tag()
    except DeployError:
        if not (args.dry_run or args.tag):
            raise
        # A plan can be shown before the first commit; a real deploy needs one (or a --tag).
        revision = args.tag or "no-commit-yet"
    tag = args.tag or image_tag(revision, args.architecture)
    if args.command == "build":
        _build(args, context.builder, tag, revision, out)
        return 0

    body = template_body(args.template)
    extra = _parse_parameters(args.parameter)
    declared = list(load_template(args.template).get("Parameters", {}))

    choice = preflight.choose_region(args.region, context.environ)
    session = context.session_factory(args.profile, choice.region)
    region, account = _target(session, choice, args.dry_run, out)
    # One plan for both: a dry run shows what the deploy would use, but for the account.
    plan = make_plan(
        stack_name=args.stack_name,
        region=region,
        account=account,
        tag=tag,
        architecture=args.architecture,
        template=Path(args.template),
        extra_parameters=extra,
        alert_email=args.alert_email,
        declared=declared,
        registry=args.registry,
        revision=revision,
    )
    if args.dry_run:
        out.write("dry run: nothing is built, pushed or deployed\n" + plan.describe() + "\n")
        # A new stack with these parameters (an update keeps previous values nobody passed,
        # which only the real deploy can read): what CloudFormation's Rules would refuse.
        preflight.check_rules(plan, None)
        out.write("rules        the template's Rules accept these parameters (new stack)\n")
        size = len(body.encode())
        sent = "inline" if size <= MAX_TEMPLATE_BODY_BYTES else f"via s3://{artifacts_bucket(plan)}"
        out.write(f"template     {size} bytes as compact JSON, sent {sent}\n")
        return 0

    cfn = session.client("cloudformation")
    current = describe_stack(cfn, plan.stack_name)
    plan = preflight.check(plan, session, current, extra, context.concurrency_reader, out)
    out.write(plan.describe() + "\n")
    publish_images(session.client("ecr"), context.builder, plan, out, context.manifests)
    source = template_source(session.client("s3"), plan, body, out)
    outputs = deploy_stack(cfn, plan, source, out)
    write_outputs(outputs, out)
    if "TopicArn" in outputs:
        pending = pending_alert_subscriptions(session.client("sns"), outputs["TopicArn"])
        if pending:
            out.write(f"\n{pending}\n")
    return 0


def _build(
    args: argparse.Namespace, builder: ContainerBuilder, tag: str, revision: str, out: TextIO
) -> None:
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


def _target(
    session: Any, choice: preflight.RegionChoice, dry_run: bool, out: TextIO
) -> tuple[str, str]:
    """(region, account) the plan is made for.

    A dry run makes no network call: the session reads the region from the usual settings,
    and the account, which needs STS, stays a placeholder.
    """
    if dry_run:
        return session.region_name or "<region>", ACCOUNT_PLACEHOLDER
    if not session.region_name:
        raise DeployError("no AWS region: set AWS_REGION, a profile region, or --region")
    account = session.client("sts").get_caller_identity()["Account"]
    # Before anything changes: which account and region this is about to touch, and why.
    out.write(
        f"target       account {account}, region {session.region_name} (from {choice.source})\n"
    )
    return session.region_name, account
