"""`imgpipe process` as a user runs it: a subprocess, JSON Lines, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BAD, GOOD

pytestmark = pytest.mark.integration


def imgpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_folder_with_good_and_bad(tmp_path: Path) -> None:
    src = tmp_path / "in" / "deep"
    src.mkdir(parents=True)
    for name in ("flowers.jpeg", "with-alpha.png"):
        shutil.copy(GOOD / name, src / name)
    shutil.copy(BAD / "truncated.jpg", src / "broken.jpg")
    out = tmp_path / "out"
    proc = imgpipe("process", "--out", str(out), "--jobs", "2", str(tmp_path / "in"))
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {Path(rec["source"]).name: rec for rec in lines}
    assert set(by_name) == {"flowers.jpeg", "with-alpha.png", "broken.jpg"}
    assert by_name["broken.jpg"]["status"] == "failed"
    assert by_name["broken.jpg"]["error"]["code"] == "corrupt_image"
    flowers = by_name["flowers.jpeg"]
    assert flowers["status"] == "done" and flowers["width"] == 1920
    for rendition in flowers["renditions"]:
        assert (out / rendition["key"]).stat().st_size == rendition["bytes"]
        assert rendition["key"].split("/")[0] in ("thumbs", "optimized")
    assert {r["format"] for r in by_name["with-alpha.png"]["renditions"]} == {"png", "webp", "avif"}


def test_all_good_exits_zero(tmp_path: Path) -> None:
    proc = imgpipe("process", "--out", str(tmp_path), str(GOOD / "320x240.jpg"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "done"


def test_custom_config(tmp_path: Path) -> None:
    config = tmp_path / "renditions.json"
    config.write_text(
        json.dumps(
            {
                "renditions": [
                    {
                        "name": "tiny",
                        "folder": "tiny",
                        "width": 50,
                        "height": 50,
                        "formats": ["webp"],
                    }
                ]
            }
        )
    )
    proc = imgpipe(
        "process", "--out", str(tmp_path), "--config", str(config), str(GOOD / "flowers.jpeg")
    )
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert [(r["name"], r["format"], r["width"]) for r in rec["renditions"]] == [
        ("tiny", "webp", 50)
    ]


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert imgpipe("process").returncode == 2
    assert imgpipe("process", str(tmp_path / "missing.jpg")).returncode == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"renditions": []}')
    assert imgpipe("process", "--config", str(bad), str(GOOD / "320x240.jpg")).returncode == 2


def test_a_phone_heic_comes_out_upright(tmp_path: Path) -> None:
    """A HEVC HEIC as a phone writes it (irot plus EXIF orientation 6) through the CLI."""
    from tests.processor.imaging import heic_samples as hs

    heic = hs.save(hs.pattern(96, 64), tmp_path / "IMG_0001.HEIC", exif=hs.exif_bytes(6))
    proc = imgpipe("process", "--out", str(tmp_path / "out"), str(heic))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert (record["status"], record["format"]) == ("done", "heic")
    assert (record["width"], record["height"]) == (64, 96)
    assert record["captured_at"] == "2024-05-01T12:30:45"
    assert {(r["width"], r["height"]) for r in record["renditions"]} == {(64, 96)}
