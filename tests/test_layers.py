"""The test layers hold: a module names one layer, and the unit sandbox
(tests/layers_sandbox.py, which `make test` runs over every unit test) refuses libvips, moto
and the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

PROBES = {
    "pure": "def test_pure():\n    assert sum([1, 2]) == 3\n",
    "libvips": "def test_vips():\n    import pyvips\n\n    assert pyvips.Image.black(1, 1).width\n",
    "moto": "def test_moto():\n    from moto import mock_aws\n    assert mock_aws\n",
    "network": (
        "import socket\n\n\ndef test_net():\n"
        "    with socket.create_connection(('127.0.0.1', 9), timeout=1):\n        pass\n"
    ),
}


def _run(tmp_path: Path, name: str, body: str, *extra: str) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / f"test_{name}.py"
    probe.write_text(f"import pytest\n\npytestmark = pytest.mark.unit\n\n\n{body}")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(tmp_path), *extra, str(probe)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(PROBES))
def test_the_unit_sandbox_refuses_what_unit_tests_may_not_use(tmp_path: Path, name: str) -> None:
    sandboxed = _run(tmp_path, name, PROBES[name], "-m", "unit", "-p", "tests.layers_sandbox")
    if name == "pure":
        assert sandboxed.returncode == 0, sandboxed.stdout
    else:
        assert sandboxed.returncode == 1, sandboxed.stdout
        assert "unavailable to unit tests" in sandboxed.stdout


def test_a_module_with_two_layers_stops_the_run(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.layers"]\n')
    body = "pytestmark = [pytest.mark.unit, pytest.mark.integration]\n\n\ndef test_x():\n    pass\n"
    probe = tmp_path / "test_two.py"
    probe.write_text(f"import pytest\n\n{body}")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(tmp_path), "--collect-only", str(probe)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "exactly one layer marker" in done.stdout + done.stderr
