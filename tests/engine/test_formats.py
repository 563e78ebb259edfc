"""One accepted-format list (processor/core/formats.py), and every place that says it agrees.

The list claims what this build decodes; these tests decode a real file of every claimed
format with the engine, and check that the API, the upload CLI, the gallery page, the error
messages and the README say exactly that list.
"""

from __future__ import annotations

import html
import json
import re
import typing
from pathlib import Path

import pytest

from api.schemas import UploadRequest
from processor.commands.upload import content_type
from processor.core import formats
from processor.core.config import EngineConfig, OutputFormat
from processor.core.errors import ImageRejected
from processor.core.keys import CONTENT_TYPES, EXTENSIONS
from processor.engine import Engine
from processor.local.cdn import GALLERY, render_formats
from tests.conftest import BAD, GOOD, ROOT
from tests.engine import heic_samples as hs

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


@pytest.mark.integration
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


def test_the_api_accepts_exactly_the_list() -> None:
    schema = UploadRequest.model_json_schema()["properties"]["content_type"]
    assert tuple(schema["enum"]) == formats.ACCEPTED_CONTENT_TYPES
    for fmt in formats.ACCEPTED:
        for ctype in fmt.content_types:
            UploadRequest(filename=f"a.{fmt.extensions[0]}", content_type=ctype, size=1)
    with pytest.raises(ValueError):
        UploadRequest(filename="a.svg", content_type="image/svg+xml", size=1)


def test_the_upload_cli_sends_the_lists_content_type(samples: dict[str, Path]) -> None:
    for name, path in samples.items():
        assert content_type(path) == formats.content_type_for(name), name


def test_the_gallery_page_says_the_list() -> None:
    page = render_formats((GALLERY / "index.html").read_text(encoding="utf-8"))
    assert "{{" not in page.replace("{{API_KEY}}", "").replace("{{TOKEN_URL}}", "")
    (data,) = re.findall(
        r'<script id="imgpipe-formats" type="application/json">(.*?)</script>', page
    )
    manifest = json.loads(data)
    assert manifest["content_types"] == list(formats.ACCEPTED_CONTENT_TYPES)
    assert set(manifest["types"]) == set(formats.ACCEPTED_EXTENSIONS)
    (accept,) = re.findall(r'accept="([^"]*)"', page)
    assert set(html.unescape(accept).split(",")) == set(formats.ACCEPTED_CONTENT_TYPES) | {
        f".{e}" for e in formats.ACCEPTED_EXTENSIONS
    }
    assert f"{formats.accepted_labels()}. Big files go up in parts." in page


@pytest.mark.integration
def test_refusals_list_what_is_accepted() -> None:
    with pytest.raises(ImageRejected) as e:
        Engine(EngineConfig()).process(BAD / "check.svg", image_id="x")
    assert e.value.message.endswith(f"send {formats.accepted_labels()}")


def test_outputs_are_the_configs_output_formats() -> None:
    assert set(typing.get_args(OutputFormat)) == {f.name for f in formats.OUTPUTS}
    assert set(EXTENSIONS) == set(CONTENT_TYPES) == {f.name for f in formats.OUTPUTS}


def test_the_readme_claims_the_list() -> None:
    # The engine's error table moved from the README to docs/engine.md; the README stays short.
    readme = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| `unsupported_format`")]
    for fmt in formats.ACCEPTED:
        assert re.search(rf"\b{re.escape(fmt.label)}\b", row), fmt.label
    assert "HEIF/AVIF" not in readme
