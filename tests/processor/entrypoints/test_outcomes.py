"""Counts go to the namespace the function is told, so stacks keep their metrics apart."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools import Logger, Metrics

from processor.entrypoints.outcomes import NAMESPACE, Outcomes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("told", "expected"), [("imgpipe/staging", "imgpipe/staging"), (None, NAMESPACE)]
)
def test_counts_use_the_functions_namespace(
    told: str | None,
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    if told:
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", told)
    outcomes = Outcomes(Logger(service="t"), Metrics(service="processor"))
    outcomes.count("ImagesFailed", ("error_code", "corrupt"))
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "_aws" in ln]
    (directive,) = json.loads(line)["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == expected
