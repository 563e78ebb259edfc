"""docs/formats.md's error table and processor/core/errors.py name the same codes, with the
same retry decision: a code added to either alone fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from processor.core import errors

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[3] / "docs" / "formats.md"


def _code_classes() -> dict[str, type[errors.PipelineError]]:
    found: dict[str, type[errors.PipelineError]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.PipelineError):
            code = value.__dict__.get("code", value.code)
            if isinstance(code, str):
                found.setdefault(code, value)
    return found


def _table() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z_]+)` \| .+ \| (yes|no)[^|]* \| .+ \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_code_in_the_code_is_in_the_table_and_back() -> None:
    assert set(_table()) == set(_code_classes())


def test_the_table_says_what_the_code_retries() -> None:
    classes = _code_classes()
    for code, retried in _table().items():
        assert (retried == "yes") == classes[code].retryable, code
