"""The benchmark harness runs end to end on a tiny corpus and writes its table and JSON.

No timing is asserted anywhere: only that the harness measures what it says and reports it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import coldstart, run
from benchmarks.pool import child_env
from tests.conftest import GOOD

pytestmark = pytest.mark.integration

TINY = ("320x240.jpg", "with-alpha.png", "big-height.webp")  # one per kind, all small


@pytest.fixture(scope="module")
def harness_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    # GIVEN a corpus of three small images, linked (not copied) from the shared corpus
    base = tmp_path_factory.mktemp("bench")
    corpus = base / "corpus"
    corpus.mkdir()
    for name in TINY:
        (corpus / name).symlink_to(GOOD / name)
    out = base / "results"
    # WHEN the harness runs once over it, without large inputs or photos, end to end or
    # import timing
    code = run.main(
        [
            "--corpus", str(corpus), "--out", str(out), "--rounds", "1", "--batch-rounds", "1",
            "--no-large", "--no-photos", "--skip-e2e", "--skip-imports",
        ]
    )  # fmt: skip
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.xdist_group("bench-harness")  # one harness run shared by these tests
def test_writes_table_json_and_charts(harness_run: tuple[Path, dict[str, Any]]) -> None:
    out, _ = harness_run
    for name in ("latest.md", "results.json", "latency.png", "cpu.png", "memory.png", "cost.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.xdist_group("bench-harness")  # one harness run shared by these tests
def test_json_has_a_row_per_input_kind_and_implementation(
    harness_run: tuple[Path, dict[str, Any]],
) -> None:
    _, results = harness_run
    impls = set(results["medians"])
    # Pillow and the floor always run; the engine runs whenever it imports.
    assert {"pillow", "floor"} <= impls
    assert impls | set(results["skipped"]) == {"engine", "pillow", "floor"}
    assert {i["name"] for i in results["inputs"]} == set(TINY)
    assert set(results["kinds"]) == {"jpeg", "png", "other", "all"}
    for kind in results["kinds"].values():
        assert set(kind["impls"]) == impls
        for row in kind["impls"].values():
            assert row["wall_ms"] > 0 and row["cpu_ms"] >= 0
    for impl in impls:
        for name in TINY:
            m = results["medians"][impl][name]
            assert m["ok"], (impl, name, m["error"])
            # both renditions, each in two formats
            assert {(r["name"], r["format"] == "webp") for r in m["renditions"]} == {
                ("optimized", True), ("optimized", False), ("thumb", True), ("thumb", False)
            }  # fmt: skip
        assert results["memory"][impl]["320x240.jpg"]["peak_rss_mb"] > 10
        assert results["batch_summary"][impl]["images"] == len(TINY)
    assert results["e2e"] == {"skipped": "--skip-e2e"}
    # The WebP encoder alone: libvips and Pillow wrap one libwebp, so the bytes match.
    for name in TINY:
        webp = results["webp"][name]
        assert webp["ok"] and webp["libvips_bytes"] == webp["pillow_bytes"] > 0, name
        assert webp["libvips_ms"] > 0 and webp["pillow_ms"] > 0
    # The latency bound is the floor's decode plus the engine's encode of the same pixels: checked
    # as arithmetic on the recorded numbers, never against another measured time (the two are
    # timed separately, and a busy machine can order them either way).
    bound = results["bounds"]["all"]
    expected = sum(
        results["medians"]["floor"][name]["stages_ms"].get("decode", 0.0)
        + results["webp"][name][f"{bound['encoder']}_ms"]
        for name in TINY
    ) / len(TINY)
    assert bound["bound_ms"] == pytest.approx(expected) and bound["bound_ms"] > 0
    assert bound["n"] == len(TINY)
    assert results["tradeoff"]["inputs"] == ["320x240.jpg"]  # the only photo
    assert {(r["effort"], r["quality"]) for r in results["tradeoff"]["rows"]} >= {(4, 80), (2, 80)}
    default = next(e for e in results["tradeoff"]["equal_quality"] if e["effort"] == 4)
    assert default["bytes_ratio"] == pytest.approx(1.0) and default["quality"] == 80
    names = [t["name"] for t in results["targets"]]
    assert "CPU per image engine/Pillow, jpeg" in names and "latency engine/bound, all" in names
    assert "peak RSS engine/Pillow, 100 MP JPEG, whole process" in names
    assert {"latency engine/Pillow, photos (jpeg)", "latency engine/Pillow, photos (all)"} <= set(
        names
    )
    assert results["photos"] == {}  # --no-photos, and none of TINY is a photo
    assert all(t["status"] in ("PASS", "MISS", "n/a") for t in results["targets"])


@pytest.mark.slow
@pytest.mark.xdist_group("bench-harness")  # one harness run shared by these tests
def test_markdown_table_lists_every_kind_and_input(
    harness_run: tuple[Path, dict[str, Any]],
) -> None:
    out, results = harness_run
    md = (out / "latest.md").read_text()
    assert "## Target check" in md
    assert "## The WebP encoder under everything" in md
    assert "bound/Pillow (decode + the largest encode, the engine's encoder)" in md
    assert "### WebP effort against bytes at equal quality (1 photo)" in md
    assert "MALLOC_ARENA_MAX=2" in md
    assert results["machine"]["libvips"] in md
    for label in ("| JPEG (< 10 MP) | 1 |", "| PNG | 1 |", "| WebP, GIF, TIFF, AVIF | 1 |",
                  "| whole set | 3 |"):  # fmt: skip
        assert label in md
    for name in TINY:
        assert f"| {name} |" in md


def test_import_time_runs_in_a_fresh_interpreter() -> None:
    ok = coldstart.import_time("json", child_env(), runs=1)
    assert ok["ok"] and ok["median_ms"] > 0 and len(ok["samples_ms"]) == 1
    missing = coldstart.import_time("no_such_module_xyz", child_env(), runs=1)
    assert not missing["ok"] and "no_such_module_xyz" in missing["error"]


def test_shaped_photos_have_their_exact_size_and_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import corpus as bench_corpus

    monkeypatch.setattr(
        bench_corpus, "PHOTO_SHAPES", {"camera-tiny.jpg": (320, 240), "wall-tiny.png": (400, 225)}
    )
    made = bench_corpus.photo_inputs(GOOD, tmp_path)
    assert [(i.name, i.format, i.width, i.height, i.photo) for i in made] == [
        ("camera-tiny.jpg", "jpeg", 320, 240, True),
        ("wall-tiny.png", "png", 400, 225, True),
    ]
    again = bench_corpus.photo_inputs(GOOD, tmp_path)  # cached: the same files, not remade
    assert [i.path.stat().st_mtime_ns for i in again] == [i.path.stat().st_mtime_ns for i in made]
