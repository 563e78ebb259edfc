"""`make run` installs what running needs, `make test` what testing needs, both quietly.

`make -n` prints what a target would run on a machine with no venv yet (VENV points at a
folder that does not exist), without running it.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs make"),
]


def dry_run(target: str, tmp_path: Path) -> list[str]:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'fresh-venv'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_the_run_set_only(tmp_path: Path) -> None:
    installs = dry_run("run", tmp_path)
    assert any("-e '.[local]'" in line for line in installs), installs
    assert not any("[dev]" in line for line in installs), installs
    assert all(" -qq" in line for line in installs), "quiet: errors only"


def test_make_test_installs_the_dev_set(tmp_path: Path) -> None:
    installs = dry_run("test", tmp_path)
    assert any("-e '.[dev]'" in line for line in installs), installs


def test_the_run_set_has_no_development_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    run_set = " ".join(project["dependencies"] + project["optional-dependencies"]["local"])
    for tool in ("pytest", "mypy", "ruff", "playwright", "matplotlib", "cfn-lint", "awscli"):
        assert tool not in run_set, tool
    assert project["license"] == "MIT", "an SPDX string, not a table"
