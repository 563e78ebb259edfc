"""Error messages: about their own image only, no server path, never cut inside a word."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from processor.core.config import EngineConfig
from processor.core.diagnostics import clip, vips_detail
from processor.core.errors import ImageRejected
from processor.engine import Engine
from tests.conftest import BAD, GOOD
from tests.engine import heic_samples as hs

# A path as a message might leak it: a slash followed by a name.
_PATH = re.compile(r"/\w")


@pytest.mark.unit
def test_detail_keeps_own_lines_without_the_path_or_repeats() -> None:
    own = "/tmp/imgpipe-abc123"
    buffer = (
        f"{own}: bad seek to 1024\n"
        "/tmp/imgpipe-other: bad seek to 512\n"
        "VipsJpeg: premature end of JPEG image\n"
        "VipsJpeg: premature end of JPEG image\n"
        "vipspng: libpng read error\n"
        f'VipsForeignLoad: "{own}" is not a known file format\n'
    )
    detail = vips_detail(buffer, own, ("VipsJpeg", "jpegload"))
    assert detail == "premature end of JPEG image; is not a known file format"
    assert "/" not in detail and "libpng" not in detail


@pytest.mark.unit
def test_clip_cuts_at_a_word() -> None:
    text = "alpha beta gamma delta " * 20
    cut = clip(text, 50)
    assert len(cut) <= 52 and cut.endswith(" …")
    assert all(word in {"alpha", "beta", "gamma", "delta"} for word in cut[:-2].split())
    assert clip("short", 50) == "short"


@pytest.mark.integration
def test_bad_corpus_messages_name_no_path() -> None:
    engine = Engine(EngineConfig())
    for path in sorted(BAD.iterdir()):
        with pytest.raises(ImageRejected) as e:
            engine.process(path, image_id="bad")
        assert not _PATH.search(e.value.message), (path.name, e.value.message)
        assert path.name not in e.value.message


@pytest.mark.integration
def test_concurrent_failures_keep_their_own_messages(tmp_path: Path) -> None:
    """libvips' error buffer is one per process: failing and warning images in threads at once
    must still each get a message about themselves only."""
    engine = Engine(EngineConfig())
    # A HEIC leaves "<its path>: bad seek" lines in the buffer without failing.
    heic = hs.save(hs.pattern(64, 48), tmp_path / "warns.heic")
    inputs = [BAD / "truncated.jpg", BAD / "truncated.png", heic, GOOD / "4.webp"] * 12

    def run(path: Path) -> tuple[str, str | None]:
        try:
            engine.process(path, image_id="x")
        except ImageRejected as e:
            return path.name, e.message
        return path.name, None

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, inputs))
    for name, message in results:
        if name in ("warns.heic", "4.webp"):
            assert message is None, (name, message)
            continue
        assert message is not None
        assert not _PATH.search(message), (name, message)
        if name == "truncated.jpg":
            assert message.startswith("the JPEG image data is damaged"), message
            assert "png" not in message.lower() and "seek" not in message, message
        else:
            assert message.startswith("the PNG image data is damaged"), message
            assert "jpeg" not in message.lower() and "seek" not in message, message
