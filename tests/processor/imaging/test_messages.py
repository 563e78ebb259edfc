"""Error messages of real bad files: about their own image only, no server path, even when
many fail at once."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from processor.core.config import EngineConfig
from processor.core.errors import ImageRejected
from processor.imaging.engine import Engine
from tests.conftest import BAD, GOOD
from tests.processor.imaging import heic_samples as hs

pytestmark = pytest.mark.integration

# A path as a message might leak it: a slash followed by a name.
_PATH = re.compile(r"/\w")


def test_bad_corpus_messages_name_no_path() -> None:
    engine = Engine(EngineConfig())
    for path in sorted(BAD.iterdir()):
        with pytest.raises(ImageRejected) as e:
            engine.process(path, image_id="bad")
        assert not _PATH.search(e.value.message), (path.name, e.value.message)
        assert path.name not in e.value.message


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
