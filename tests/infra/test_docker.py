"""docker/: the image recipes, checked without a Docker engine.

hadolint (test_lint) checks style; these check the project's own rules: one pin list
(pyproject.toml, through docker/requirements.py), a pinned Lambda base, two stages, non-root,
and a build context that holds only what the images copy.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.infra.conftest import DOCKERFILES, ROOT
from tests.infra.images import COPY_SOURCES

pytestmark = pytest.mark.unit

SCRIPT = ROOT / "docker" / "requirements.py"


def requirements(pyproject: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(pyproject), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_requirements_are_pyprojects_pins_less_the_excluded() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    done = requirements(ROOT / "pyproject.toml", "--exclude", "PyVips,pyvips_binary")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines == [p for p in pins if not p.lower().startswith("pyvips")]
    assert all("==" in line for line in lines)


def test_requirements_refuse_unpinned_specs_and_unknown_excludes(tmp_path: Path) -> None:
    loose = tmp_path / "pyproject.toml"
    loose.write_text('[project]\nname = "x"\ndependencies = ["boto3>=1.0"]\n')
    done = requirements(loose)
    assert done.returncode == 2 and "not pinned" in done.stderr
    done = requirements(ROOT / "pyproject.toml", "--exclude", "fastapi,no-such-package")
    assert done.returncode == 2 and "no-such-package" in done.stderr


def stages(text: str) -> list[str]:
    return re.findall(r"^FROM\s+(.+)$", text, flags=re.M)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_is_two_stage_on_the_pinned_lambda_base(name: str) -> None:
    text = DOCKERFILES[name].read_text()
    (base,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, flags=re.M)
    # A dated tag, never a moving one like "3.12" or "latest".
    assert re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.12\.\d{4}\.\d{2}\.\d{2}\.\d{2}", base)
    assert stages(text) == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE}"]
    assert "COPY --from=builder /deps ${LAMBDA_TASK_ROOT}" in text
    # Dependencies come from pyproject.toml through the generator, not a second list.
    assert "python requirements.py pyproject.toml --exclude" in text
    assert not re.search(r"pip install[^\n]*==", text)
    # The architecture guard names the values the template's Architecture parameter allows.
    assert "ARG ARCH=arm64" in text and "arm64:aarch64|x86_64:x86_64" in text


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_final_stage_is_non_root_and_carries_no_secrets_or_tests(name: str) -> None:
    text = DOCKERFILES[name].read_text()
    final = text[text.rindex("\nFROM ") :]
    users = re.findall(r"^USER\s+(\S+)$", final, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    for line in re.findall(r"^(?:ENV|ARG)\s+(.+)$", text, flags=re.M):
        assert not re.search(r"(?i)secret|password|token|access_key|api_key", line), line
    copied = COPY_SOURCES.findall(text)
    sources = {src for group in copied for src in group.split()}
    assert not any(s.startswith(("tests", ".", "infra", "benchmarks")) for s in sources), sources


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_the_code_is_readable_by_lambdas_user_whatever_the_checkouts_umask(name: str) -> None:
    # COPY keeps the build context's permission bits: a checkout made under umask 077 has
    # 0600 files and 0700 folders, which Lambda's unprivileged user cannot read.
    # The legacy builder (DOCKER_BUILDKIT=0) has no COPY --chmod: a RUN makes them readable.
    text = DOCKERFILES[name].read_text()
    final = text[text.rindex("\nFROM ") :]
    copied = re.findall(r"^COPY\s+(?!--from)\S+\s+\$\{LAMBDA_TASK_ROOT\}/(\w+)/", final, flags=re.M)
    assert copied
    assert not re.search(r"^COPY\s+--chmod", final, flags=re.M)
    runs = " ".join(re.findall(r"^RUN\s+((?:.*\\\n)*.*)$", final, flags=re.M))
    made_readable = set(re.findall(r'chmod -R a\+rX ((?:"\$\{LAMBDA_TASK_ROOT\}/\w+"\s*)+)', runs))
    folders = {f for group in made_readable for f in re.findall(r"/(\w+)\"", group)}
    assert set(copied) <= folders, (name, copied, folders)
    assert final.index("chmod -R a+rX") < final.index("\nUSER ")


def test_build_context_allows_only_what_the_images_copy() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "docker/requirements.py", "processor", "api"}
    for path in DOCKERFILES.values():
        text = path.read_text()
        copied = COPY_SOURCES.findall(text)
        for group in copied:
            for source in group.split():
                top = source.rstrip("/").split("/")[0]
                assert source.rstrip("/") in allowed or top in allowed, (
                    f"{path.name} copies {source}"
                )
    # The CLI and the local stack live in cli/, outside every allowed folder.
    assert not (allowed & {"cli", "cli/commands", "cli/local"}), "no CLI or local stack in images"
