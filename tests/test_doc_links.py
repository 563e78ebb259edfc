"""The README and docs/ link to files that exist: moving a page cannot leave a dead link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) outside code: a relative target, an optional #anchor.
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def relative_links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z]+:", t)]


def test_pages_are_found() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "local.md", "api.md", "engine.md", "processor.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_names_a_file_that_exists(page: Path) -> None:
    dead = []
    for target in relative_links(page):
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            dead.append(target)
    assert dead == [], f"{page.relative_to(ROOT)} links to missing files: {dead}"


def test_a_dead_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [gone](nope.md#x) `[code](nope.md)` [web](https://x.y)\n")
    assert relative_links(page) == ["page.md", "nope.md#x"]
