"""`python -m infra.deploy`: the plan, the tags, the options and the Docker command lines.

The real ``DockerCli`` is checked against a stand-in `docker` executable that records its
arguments, since these machines have the Docker client but no engine at this point
(tests/infra/test_deploy_moto.py runs the whole deploy against moto).
"""

from __future__ import annotations

import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra import template as tpl
from infra.deploy.images import DockerCli, build_args
from infra.deploy.plan import make_plan, stack_parameters, template_defaults
from infra.deploy.source import git_tag
from infra.errors import DeployError
from tests.fakes.deploy import REGISTRY, FakeBuilder, run
from tests.infra.conftest import ACCOUNT, REGION, ROOT

pytestmark = pytest.mark.unit


class NoAws:
    """A session that has a region but refuses to make any client."""

    region_name = "eu-west-1"

    def client(self, service: str) -> Any:
        raise AssertionError(f"a dry run created a {service} client")


class NoDocker:
    def build(self, **kwargs: Any) -> None:
        raise AssertionError("a dry run built an image")

    def login(self, **kwargs: Any) -> None:
        raise AssertionError("a dry run logged in")

    def push(self, image: str) -> None:
        raise AssertionError("a dry run pushed")


# ------------------------------------------------------------------ dry run ------------------


def test_dry_run_prints_the_plan_and_touches_neither_aws_nor_docker() -> None:
    code, out = run(
        [
            "deploy",
            "--dry-run",
            "--tag",
            "abc1234",
            "--alert-email",
            "ops@example.com",
            "--architecture",
            "x86_64",
            "--parameter",
            "ProcessorMemory=3008",
        ],
        NoDocker(),
        session_factory=lambda profile, region: NoAws(),
    )
    assert code == 0
    registry = "<account>.dkr.ecr.eu-west-1.amazonaws.com"
    assert f"{registry}/imgpipe/processor:abc1234" in out
    assert f"{registry}/imgpipe/api:abc1234" in out
    assert "repository   imgpipe/processor" in out and "repository   imgpipe/api" in out
    assert "stack        imgpipe in eu-west-1" in out
    for parameter in (
        "AlertEmail=ops@example.com",
        "Architecture=x86_64",
        "ProcessorMemory=3008",
        f"ProcessorImageUri={registry}/imgpipe/processor:abc1234",
    ):
        assert f"parameter    {parameter}" in out
    assert "linux/amd64" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack-name", "Bad_Name"], "stack name"),
        (["--parameter", "ProcesorMemory=3008"], "ProcesorMemory"),
        (["--parameter", "ProcessorImageUri=x"], "set by deploy itself"),
        (["--parameter", "novalue"], "Key=Value"),
    ],
)
def test_bad_options_fail_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(
        ["deploy", "--dry-run", "--tag", "abc1234", *argv],
        NoDocker(),
        session_factory=lambda profile, region: NoAws(),
    )
    assert code == 1
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------ against moto -------------


def test_update_parameters_keep_values_that_differ_from_the_default() -> None:
    plan = make_plan(
        stack_name="imgpipe",
        region=REGION,
        account=ACCOUNT,
        tag="abc",
        architecture="arm64",
        template=tpl.TEMPLATE_PATH,
        extra_parameters={},
        alert_email=None,
    )
    defaults = template_defaults(tpl.TEMPLATE_PATH)
    previous = {"AlertEmail": "a@b.co", "ApiMemory": "1024", "ProcessorMemory": "2048", "Gone": "x"}
    params = stack_parameters(plan, defaults, previous)
    kept = {p["ParameterKey"] for p in params if p.get("UsePreviousValue")}
    # ProcessorMemory equals its default (same value either way); Gone is no longer declared.
    assert kept == {"AlertEmail", "ApiMemory"}
    with pytest.raises(DeployError, match="AlertEmail"):
        stack_parameters(plan, defaults, None)


# ------------------------------------------------------------------ git tag ------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_tag_is_the_commit_unless_what_goes_into_the_images_changed(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "processor").mkdir()
    (tmp_path / "processor" / "service.py").write_text("one")
    _git(tmp_path, "add", "processor/service.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    sha = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert git_tag(tmp_path) == sha
    # A scratch file outside the build context does not change the images.
    (tmp_path / "notes.txt").write_text("scratch")
    assert git_tag(tmp_path) == sha
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    # An untracked module inside it does: it would be copied into the image.
    (tmp_path / "processor" / "new.py").write_text("new")
    assert git_tag(tmp_path, now=lambda: when) == f"{sha}-dirty-20260102030405"
    (tmp_path / "processor" / "new.py").unlink()
    (tmp_path / "processor" / "service.py").write_text("two")
    assert git_tag(tmp_path, now=lambda: when) == f"{sha}-dirty-20260102030405"


def test_tag_without_a_commit_asks_for_one(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    with pytest.raises(DeployError, match="--tag"):
        git_tag(tmp_path)


# ------------------------------------------------------------------ the real Docker calls ----


@pytest.fixture
def docker_stub(tmp_path: Path) -> tuple[Path, Path]:
    """A `docker` that logs argv and stdin; `docker version` fails when $STUB_NO_ENGINE is set."""
    log = tmp_path / "docker.log"
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ] && [ -n "$STUB_NO_ENGINE" ]; then exit 1; fi\n'
        f'echo "argv: $*" >> "{log}"\n'
        f'if [ "$1" = login ]; then echo "stdin: $(cat)" >> "{log}"; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def test_docker_cli_builds_for_lambda_and_logs_in_through_stdin(
    docker_stub: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    script, log = docker_stub
    monkeypatch.delenv("STUB_NO_ENGINE", raising=False)
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    cli = DockerCli(str(script))
    cli.build(
        dockerfile=ROOT / "docker" / "api.Dockerfile",
        context=ROOT,
        image="r/api:t",
        architecture="x86_64",
        labels={"org.opencontainers.image.revision": "abc"},
    )
    cli.login(registry=REGISTRY, username="AWS", password="s3cret-token")
    cli.push("r/api:t")
    # The engine probe (`docker version`) runs first; the calls that matter follow.
    lines = [line for line in log.read_text().splitlines() if not line.startswith("argv: version")]
    build = lines[0]
    assert build.startswith("argv: build --platform linux/amd64 --build-arg ARCH=x86_64")
    assert "--provenance=false" in build
    assert "--label org.opencontainers.image.revision=abc" in build
    assert "BASE_IMAGE" not in build and "--network" not in build
    assert f"--file {ROOT / 'docker' / 'api.Dockerfile'} --tag r/api:t {ROOT}" in build
    assert lines[1] == f"argv: login --username AWS --password-stdin {REGISTRY}"
    assert lines[2] == "stdin: s3cret-token"
    assert not any("s3cret-token" in line for line in lines if line.startswith("argv"))
    assert lines[3] == "argv: push r/api:t"


def test_docker_cli_without_an_engine_says_so(
    docker_stub: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    script, _ = docker_stub
    monkeypatch.setenv("STUB_NO_ENGINE", "1")
    with pytest.raises(DeployError, match="no Docker engine"):
        DockerCli(str(script)).push("r/api:t")


def test_docker_cli_on_another_base_and_network_with_the_legacy_builder() -> None:
    cli = DockerCli(base_image="mirror.example/lambda/python:3.12", network="host")
    args = build_args(
        ROOT / "docker" / "api.Dockerfile",
        ROOT,
        "r/api:t",
        "arm64",
        {},
        cli,
        environ={"DOCKER_BUILDKIT": "0"},
    )
    assert args[:5] == ["build", "--platform", "linux/arm64", "--build-arg", "ARCH=arm64"]
    assert "BASE_IMAGE=mirror.example/lambda/python:3.12" in args
    assert args[args.index("--network") + 1] == "host"
    # The legacy builder makes no attestations and refuses buildx's flag for them.
    assert "--provenance=false" not in args


# ------------------------------------------------------------------ tags and manifests -------


def test_default_tag_names_the_commit_and_the_architecture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("infra.deploy.cli.git_tag", lambda: "0123456789ab")
    code, out = run(
        ["deploy", "--dry-run", "--architecture", "x86_64"],
        NoDocker(),
        session_factory=lambda profile, region: NoAws(),
    )
    assert code == 0
    assert "imgpipe/processor:0123456789ab-x86_64" in out
    builder = FakeBuilder()
    assert run(["build", "--image", "api"], builder)[0] == 0
    ((_, build),) = builder.calls
    assert build["image"] == "imgpipe/api:0123456789ab-arm64"
    assert build["labels"]["org.opencontainers.image.revision"] == "0123456789ab"
