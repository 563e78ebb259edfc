"""`imgpipe reprocess` / `imgpipe redrive` argument and settings errors (the happy paths run
against the moto server in test_pipeline_http.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli.main import main
from tests.aws import processor_env

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from processor_env(monkeypatch)


def test_reprocess_needs_the_queue(capsys):
    assert main(["reprocess"]) == 2
    assert "IMGPIPE_QUEUE_URL" in capsys.readouterr().err


def test_redrive_needs_both_queues(monkeypatch, capsys):
    monkeypatch.setenv("IMGPIPE_QUEUE_URL", "http://127.0.0.1:1/q")
    assert main(["redrive"]) == 2
    assert "IMGPIPE_DLQ_URL" in capsys.readouterr().err


def test_missing_settings_are_named(monkeypatch, capsys):
    monkeypatch.delenv("IMGPIPE_TABLE")
    assert main(["redrive"]) == 2
    assert "IMGPIPE_TABLE" in capsys.readouterr().err


def test_ids_and_all_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["reprocess", "--all", "--ids", "x"])
    assert "not allowed with" in capsys.readouterr().err
