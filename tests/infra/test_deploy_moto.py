"""`python -m infra.deploy` end to end against moto.

Only Docker is replaced: ``FakeBuilder`` stands behind the ``ContainerBuilder`` interface and,
like a real push, puts the image manifest into (moto's) ECR. ECR, STS and CloudFormation are
moto's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import template as tpl
from tests.fakes.deploy import REGISTRY, FakeBuilder, run
from tests.infra.conftest import ACCOUNT, MOTO_STAND_INS, MOTO_TYPES, REGION, ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def moto_template(tmp_path: Path, template: dict[str, Any]) -> Path:
    """The template less what moto's CloudFormation cannot create (CloudFront, HTTP API...)."""
    path = tmp_path / "moto-template.json"
    path.write_text(json.dumps(tpl.subset_template(template, MOTO_TYPES, MOTO_STAND_INS)))
    return path


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    with mock_aws():
        yield


# ------------------------------------------------------------------ dry run ------------------


# ------------------------------------------------------------------ against moto -------------


# ------------------------------------------------------------------ git tag ------------------


# ------------------------------------------------------------------ the real Docker calls ----


# ------------------------------------------------------------------ tags and manifests -------


def test_deploy_creates_repositories_pushes_images_and_creates_the_stack(
    aws: None, moto_template: Path
) -> None:
    builder = FakeBuilder()
    code, out = run(
        [
            "deploy",
            "--tag",
            "abc1234",
            "--alert-email",
            "ops@example.com",
            "--template",
            str(moto_template),
        ],
        builder,
    )
    assert code == 0, out
    processor_uri = f"{REGISTRY}/imgpipe/processor:abc1234"
    api_uri = f"{REGISTRY}/imgpipe/api:abc1234"

    # ECR: both repositories, scanned on push, immutable tags.
    ecr = boto3.client("ecr")
    repos = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
    assert set(repos) == {"imgpipe/processor", "imgpipe/api"}
    for repo in repos.values():
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repo["imageTagMutability"] == "IMMUTABLE"

    # Docker: logged in with ECR's token, then each image built for its Dockerfile and pushed.
    assert builder.names() == ["login", "build", "push", "build", "push"]
    login = builder.calls[0][1]
    assert login["registry"] == REGISTRY and login["username"] == "AWS" and login["password"]
    builds = {c["image"]: c for name, c in builder.calls if name == "build"}
    assert builds[processor_uri]["dockerfile"] == ROOT / "docker" / "processor.Dockerfile"
    assert builds[api_uri]["dockerfile"] == ROOT / "docker" / "api.Dockerfile"
    assert {c["arch"] for c in builds.values()} == {"arm64"}
    assert {c["context"] for c in builds.values()} == {ROOT}

    # CloudFormation: the stack runs the pushed images.
    cfn = boto3.client("cloudformation")
    (stack,) = cfn.describe_stacks(StackName="imgpipe")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["ProcessorImageUri"] == processor_uri
    assert params["ApiImageUri"] == api_uri
    assert params["AlertEmail"] == "ops@example.com"
    function = boto3.client("lambda").get_function(FunctionName="imgpipe-processor")
    assert function["Code"]["ImageUri"] == processor_uri

    # The outputs are printed.
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["BucketName"] == f"imgpipe-{ACCOUNT}-{REGION}"
    for key, value in outputs.items():
        assert key in out and value in out


def test_redeploy_of_the_same_commit_skips_the_build_and_keeps_previous_parameters(
    aws: None, moto_template: Path
) -> None:
    first = FakeBuilder()
    args = ["deploy", "--tag", "abc1234", "--template", str(moto_template)]
    assert run([*args, "--alert-email", "ops@example.com"], first)[0] == 0

    again = FakeBuilder()
    code, out = run([*args, "--parameter", "ProcessorMemory=3008"], again)
    assert code == 0, out
    # Same commit, immutable tag already in ECR: no Docker at all.
    assert again.names() == []
    assert "already in ECR" in out
    (stack,) = boto3.client("cloudformation").describe_stacks(StackName="imgpipe")["Stacks"]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["AlertEmail"] == "ops@example.com"  # not passed again, not reset
    assert params["ProcessorMemory"] == "3008"


def test_a_new_stack_without_alert_email_fails_before_building(
    aws: None, moto_template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    builder = FakeBuilder()
    code, _ = run(["deploy", "--tag", "abc1234", "--template", str(moto_template)], builder)
    assert code == 1
    assert "--alert-email" in capsys.readouterr().err
    assert builder.calls == []


def test_an_image_of_another_architecture_stops_the_deploy_before_the_stack(
    aws: None, moto_template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a registry that holds amd64 images under the tag an arm64 deploy uses
    builder = FakeBuilder(pushed_architecture="amd64")
    # WHEN the arm64 stack is deployed
    code, _ = run(
        [
            "deploy",
            "--tag",
            "abc1234",
            "--alert-email",
            "ops@example.com",
            "--template",
            str(moto_template),
        ],
        builder,
    )
    # THEN it stops with the reason, and no stack points at the wrong images
    assert code == 1
    assert "linux/amd64, but the stack's functions run linux/arm64" in capsys.readouterr().err
    stacks = boto3.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"] == []


# ------------------------------------------------------------------ template over 51,200 bytes


def test_a_template_over_the_inline_limit_goes_through_a_private_bucket(
    aws: None, tmp_path: Path, template: dict[str, Any]
) -> None:
    from infra.deploy.artifacts import MAX_TEMPLATE_BODY_BYTES

    # GIVEN the moto template grown past the inline limit (top-level Metadata is sent as is)
    big = tpl.subset_template(template, MOTO_TYPES, MOTO_STAND_INS)
    big.setdefault("Metadata", {})["Padding"] = "x" * (MAX_TEMPLATE_BODY_BYTES + 1000)
    path = tmp_path / "big-template.json"
    path.write_text(json.dumps(big))
    args = ["deploy", "--tag", "abc1234", "--template", str(path)]

    # WHEN it is deployed, then deployed again with a parameter changed
    code, out = run([*args, "--alert-email", "ops@example.com"], FakeBuilder())
    assert code == 0, out
    code, again = run([*args, "--parameter", "ProcessorMemory=3008"], FakeBuilder())
    assert code == 0, again

    # THEN CloudFormation read it from the deploy's own bucket: private, encrypted, reused
    bucket = f"imgpipe-cfn-{ACCOUNT}-{REGION}"
    assert f"sent as s3://{bucket}/templates/" in out
    assert "creating s3://" in out and "creating s3://" not in again
    s3 = boto3.client("s3")
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert obj["Size"] > MAX_TEMPLATE_BODY_BYTES
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    cfn = boto3.client("cloudformation")
    (stack,) = cfn.describe_stacks(StackName="imgpipe")["Stacks"]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["ProcessorMemory"] == "3008"
    assert "Padding" in json.dumps(cfn.get_template(StackName="imgpipe")["TemplateBody"])


def test_a_template_that_fits_is_sent_inline_and_makes_no_bucket(
    aws: None, moto_template: Path
) -> None:
    code, out = run(
        ["deploy", "--tag", "abc1234", "--alert-email", "a@b.co", "--template", str(moto_template)],
        FakeBuilder(),
    )
    assert code == 0, out
    names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert not any("-cfn-" in n for n in names), names


# ------------------------------------------------------------------ images kept --------------


def _expired(images: list[tuple[int, set[str]]], policy: dict[str, Any]) -> set[int]:
    """ECR's lifecycle evaluation, as documented: rules in priority order; an image whose tags
    a rule selects belongs to that rule alone; a count rule expires all but the newest."""
    expired: set[int] = set()
    taken: set[int] = set()
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        sel = rule["selection"]
        prefixes = sel.get("tagPrefixList", [])
        chosen = [
            (pushed, n)
            for n, (pushed, tags) in enumerate(images)
            if n not in taken
            and (sel["tagStatus"] == "any" or any(t.startswith(p) for t in tags for p in prefixes))
        ]
        taken |= {n for _, n in chosen}
        newest_first = sorted(chosen, reverse=True)
        expired |= {n for _, n in newest_first[sel["countNumber"] :]}
    return expired


def test_the_image_a_function_runs_is_never_expired_by_later_builds(
    aws: None, moto_template: Path
) -> None:
    from infra.deploy.images import DEPLOYED_PREFIX, KEEP_OTHERS, lifecycle_policy

    # GIVEN a deploy: its images get a deployed- tag and the policy that keeps them
    args = ["deploy", "--alert-email", "a@b.co", "--template", str(moto_template)]
    code, out = run([*args, "--tag", "abc1234"], FakeBuilder())
    assert code == 0, out
    ecr = boto3.client("ecr")
    for repository in ("imgpipe/processor", "imgpipe/api"):
        tags = {
            t
            for d in ecr.describe_images(repositoryName=repository)["imageDetails"]
            for t in d.get("imageTags", [])
        }
        assert "abc1234" in tags and any(t.startswith(DEPLOYED_PREFIX) for t in tags), tags
        policy = json.loads(
            ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"]
        )
        assert policy == lifecycle_policy()

    # WHEN many more builds are pushed after it and never deployed
    images = [(0, {"abc1234", f"{DEPLOYED_PREFIX}20260101T000000Z"})]
    images += [(n, {f"build{n}"}) for n in range(1, KEEP_OTHERS * 2)]
    # THEN the lifecycle expires old builds, never the deployed image
    expired = _expired(images, lifecycle_policy())
    assert 0 not in expired and len(expired) == len(images) - 1 - KEEP_OTHERS
