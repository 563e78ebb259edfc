"""Shared test ground: where the corpus is, and what each of its files must give."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# xdist_group works again under pytest 9 (see the module); one layer marker per test module.
pytest_plugins = ["tests.xdist_groups", "tests.layers"]

# Hypothesis' per-example deadline (200 ms) is a measured time compared with a limit: on a
# shared, loaded machine an ordinary example can take longer and fail the run by chance.
# Properties are about results, never speed, so no deadline (and no too_slow health check).
settings.register_profile("imgpipe", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("imgpipe")

ROOT = Path(__file__).resolve().parents[1]
# IMGPIPE_CORPUS: a checkout that has no shared/ beside it (a git worktree) names it.
CORPUS = Path(os.environ.get("IMGPIPE_CORPUS") or ROOT / ".." / "shared" / "corpus").resolve()
GOOD = CORPUS / "good"
BAD = CORPUS / "bad"

# ../shared/corpus/README.md: what each bad file must be refused with.
BAD_CODES = {
    "corrupt-header.jpg": "corrupt_image",
    "truncated.jpg": "corrupt_image",
    "truncated.png": "corrupt_image",
    "65536-uint32-limit.png": "too_many_pixels",
    "check.svg": "unsupported_format",
    "struct-image-04-t.svg": "unsupported_format",
    "relax.jp2": "unsupported_format",
}


# Fake credentials for every test that builds an AWS client: set before any client exists,
# so nothing can ever reach real AWS (the region comes with them: botocore wants one).
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def good_files() -> list[Path]:
    return sorted(p for p in GOOD.iterdir() if p.is_file())


def bad_files() -> list[Path]:
    return sorted(p for p in BAD.iterdir() if p.is_file())


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not GOOD.is_dir():
        pytest.fail(f"the shared corpus is missing at {CORPUS}")
    return CORPUS


_STARTED_AT = time.time()  # an image report older than this run is not this run's


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The image tests' measurements (tests/containers/report.py), printed once, by the process
    that reports: with xdist the workers write them, and only this root conftest is loaded
    in the controller."""
    from tests.containers.report import summary

    lines = summary(newer_than=_STARTED_AT)
    if lines and not hasattr(terminalreporter.config, "workerinput"):
        terminalreporter.write_sep("-", "image measurements (out/images/report.json)")
        for line in lines:
            terminalreporter.write_line(line)
