"""Spool files a stopped invocation left in /tmp are gone at the next cold start, and only those.

Real processes: a directory's owner is a child Python process that claims its scratch space
and then either ends (as a timed-out Lambda runtime is ended) or keeps running.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from processor.entrypoints import bootstrap, scratch
from processor.entrypoints.settings import ProcessorSettings

pytestmark = pytest.mark.integration

ROOT_DIR = Path(__file__).resolve().parents[3]
CLAIM = (
    "import sys; from pathlib import Path; from processor.entrypoints import scratch\n"
    "s = scratch.claim(Path(sys.argv[1]))\n"
    "(s.directory / 'imgpipe-upload').write_bytes(b'x' * 4096)\n"
    "print(s.directory, flush=True)\n"
    "if sys.argv[2] == 'stay': sys.stdin.read()\n"
)


def _claim_in_child(root: Path, mode: str) -> tuple[subprocess.Popen[str], Path]:
    child = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(root), mode],
        cwd=ROOT_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    directory = Path(child.stdout.readline().strip())
    assert (directory / "imgpipe-upload").exists()
    return child, directory


def test_a_cold_start_clears_what_ended_processes_left_and_keeps_live_ones(
    tmp_path: Path,
) -> None:
    # GIVEN one process that was stopped mid-spool and one that is still working
    alive, alive_dir = _claim_in_child(tmp_path, "stay")
    ended, ended_dir = _claim_in_child(tmp_path, "leave")
    assert ended.wait(timeout=30) == 0
    try:
        # WHEN a new execution environment starts
        mine = scratch.claim(tmp_path)
        # THEN the ended process's spool is gone, the live one's is untouched
        assert not ended_dir.exists()
        assert (alive_dir / "imgpipe-upload").exists()
        assert (mine.cleared, mine.cleared_bytes) == (1, 4096)
        assert mine.directory.parent == tmp_path and mine.directory.is_dir()
        # and a second claim in this process does not take the first one's directory
        again = scratch.claim(tmp_path)
        assert mine.directory.exists() and again.cleared == 0
    finally:
        assert alive.stdin is not None
        alive.stdin.close()
        alive.wait(timeout=30)
    assert scratch.claim(tmp_path).cleared == 1  # the second child has ended now


def test_the_processor_spools_into_its_own_scratch_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / scratch.ROOT_NAME / "spool-old"
    stale.mkdir(parents=True)
    (stale / "imgpipe-abc").write_bytes(b"left by a timed-out invocation")
    container = bootstrap.build(ProcessorSettings())
    engine_dir = Path(container.engine.tmp_dir)  # type: ignore[attr-defined]
    assert engine_dir.parent == tmp_path / scratch.ROOT_NAME
    assert not stale.exists()
    with container.engine.spool(io.BytesIO(b"\xff\xd8\xff" + b"0" * 100)) as spooled:
        assert spooled.path.parent == engine_dir


def test_too_little_room_for_the_upload_limit_is_logged_at_cold_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    free = scratch.claim(tmp_path).free_bytes
    assert free > 0
    with caplog.at_level("ERROR", logger="processor.entrypoints.scratch"):
        scratch.claim(tmp_path, room_for=free // 2)
        assert caplog.records == []
        scratch.claim(tmp_path, room_for=free * 4)  # more than this file system can hold
    (record,) = caplog.records
    assert "EphemeralStorage" in record.getMessage()
    assert record.max_input_bytes == free * 4  # type: ignore[attr-defined]
