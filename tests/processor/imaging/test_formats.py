"""The accepted-format list (processor/core/formats.py) against this build: a real file of every
claimed format decodes, and refusals name exactly the list."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.commands.upload import content_type
from processor.core import formats
from processor.core.config import EngineConfig
from processor.core.errors import ImageRejected
from processor.imaging.engine import Engine
from tests.conftest import BAD, GOOD
from tests.processor.imaging import heic_samples as hs

pytestmark = pytest.mark.integration

# A real file of every format the list can name.
SAMPLES = {
    "jpeg": GOOD / "Landscape_1.jpg",
    "png": GOOD / "with-alpha.png",
    "webp": GOOD / "4.webp",
    "gif": GOOD / "animated-loop-3.gif",
    "tiff": GOOD / "G31D.TIF",
    "avif": GOOD / "pitm.avif",
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    heic = hs.save(hs.pattern(64, 48), tmp_path_factory.mktemp("formats") / "photo.heic")
    return {**SAMPLES, "heic": heic}


def test_every_format_has_a_sample() -> None:
    assert {f.name for f in formats.FORMATS} == set(SAMPLES) | {"heic"}


def test_this_build_decodes_exactly_what_the_list_claims(samples: dict[str, Path]) -> None:
    engine = Engine(EngineConfig())
    for fmt in formats.FORMATS:
        if fmt.decodes:
            assert engine.process(samples[fmt.name], image_id="x").facts.format == fmt.name
        else:
            with pytest.raises(ImageRejected) as e:
                engine.process(samples[fmt.name], image_id="x")
            assert e.value.code == "unsupported_format"
            assert "is not supported by this build" in e.value.message


def test_refusals_list_what_is_accepted() -> None:
    with pytest.raises(ImageRejected) as e:
        Engine(EngineConfig()).process(BAD / "check.svg", image_id="x")
    assert e.value.message.endswith(f"send {formats.accepted_labels()}")


def test_the_upload_cli_sends_the_lists_content_type(samples: dict[str, Path]) -> None:
    for name, path in samples.items():
        assert content_type(path) == formats.content_type_for(name), name
