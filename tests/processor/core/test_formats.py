"""One accepted-format list (processor/core/formats.py), and every place that says it agrees:
the API, the upload CLI, the gallery page, the README and the rendition config."""

from __future__ import annotations

import html
import json
import re
import typing

import pytest

from api.schemas import UploadRequest
from cli.local.site import GALLERY, render_formats
from processor.core import formats
from processor.core.config import OutputFormat
from processor.core.encoders import ENCODERS
from processor.core.keys import CONTENT_TYPES, EXTENSIONS
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def test_the_api_accepts_exactly_the_list() -> None:
    schema = UploadRequest.model_json_schema()["properties"]["content_type"]
    assert tuple(schema["enum"]) == formats.ACCEPTED_CONTENT_TYPES
    for fmt in formats.ACCEPTED:
        for ctype in fmt.content_types:
            UploadRequest(filename=f"a.{fmt.extensions[0]}", content_type=ctype, size=1)
    with pytest.raises(ValueError):
        UploadRequest(filename="a.svg", content_type="image/svg+xml", size=1)


def test_the_gallery_page_says_the_list() -> None:
    page = render_formats((GALLERY / "index.html").read_text(encoding="utf-8"))
    left = ("{{API_KEY}}", "{{TOKEN_URL}}", "{{TOKEN_SECRET}}")  # the sign-in's, per server
    for placeholder in left:
        page = page.replace(placeholder, "")
    assert "{{" not in page
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


def test_outputs_are_the_configs_output_formats() -> None:
    assert set(typing.get_args(OutputFormat)) == set(ENCODERS)
    assert set(EXTENSIONS) == set(CONTENT_TYPES) == set(ENCODERS)
    for name in ENCODERS:
        assert CONTENT_TYPES[name] == formats.content_type_for(name)


def test_the_readme_claims_the_list() -> None:
    # The one error table is in docs/formats.md (tests/processor/core/test_error_table.py).
    readme = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| `unsupported_format`")]
    for fmt in formats.ACCEPTED:
        assert re.search(rf"\b{re.escape(fmt.label)}\b", row), fmt.label
    assert "HEIF/AVIF" not in readme


def test_the_upload_types_offer_only_what_can_be_processed() -> None:
    # An image sequence's frames are not read, and one without a still is refused.
    assert not any("sequence" in t for t in formats.ACCEPTED_CONTENT_TYPES)
