"""`--dist loadgroup` sends every test of one xdist_group to one worker, as `make pytest` runs
it: the image tests rely on it to start one Docker engine and build each image once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

GROUPED = """
import os, pytest

@pytest.mark.xdist_group("one")
@pytest.mark.parametrize("n", range(6))
def test_grouped(n, record):
    record("one", n)

@pytest.mark.parametrize("n", range(6))
def test_free(n, record):
    record("free", n)
"""

CONFTEST = """
import json, os, pytest
pytest_plugins = ["tests.xdist_groups"]

@pytest.fixture
def record():
    def write(group, n):
        with open(os.environ["WORKERS_LOG"], "a") as f:
            f.write(json.dumps([group, n, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
    return write
"""


def test_one_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    log = tmp_path / "workers.jsonl"
    env = {"WORKERS_LOG": str(log), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p",
         "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 12
    grouped = {worker for group, _, worker in rows if group == "one"}
    assert len(grouped) == 1, rows
