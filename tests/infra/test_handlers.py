"""Every handler the Dockerfiles or the template name imports and is callable, and no image
ships a GPL component (what each image is made of; tests/infra/test_dependency_sets.py runs
the handlers on exactly that)."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from infra import template as tpl
from tests.infra.conftest import DOCKERFILES, ROOT

pytestmark = pytest.mark.unit

# The image each function runs, and the Lambda function that runs it.
FUNCTION_OF = {"processor": "ProcessorFunction", "api": "ApiFunction"}


def dockerfile_cmd(name: str) -> str:
    text = DOCKERFILES[name].read_text()
    (cmd,) = re.findall(r"^CMD\s+(\[.*\])\s*$", text, flags=re.M)
    (handler,) = json.loads(cmd)
    return str(handler)


def all_handlers() -> list[tuple[str, str]]:
    found = [(f"docker/{p.name}", dockerfile_cmd(n)) for n, p in sorted(DOCKERFILES.items())]
    found += [(f"template {k}", h) for k, h in sorted(tpl.handlers().items())]
    return found


@pytest.mark.parametrize(("source", "handler"), all_handlers())
def test_handler_imports_and_is_callable(source: str, handler: str) -> None:
    module_name, _, attribute = handler.rpartition(".")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute, None)), f"{source}: {handler} is not callable"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_and_template_name_the_same_handler(name: str) -> None:
    assert tpl.handlers()[FUNCTION_OF[name]] == dockerfile_cmd(name)


# ------------------------------------------------------------------ what an image holds ------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_contents(name: str) -> tuple[set[str], set[str]]:
    """(distributions installed in the image, project folders copied into it)."""
    text = DOCKERFILES[name].read_text()
    (exclude,) = re.findall(r"--exclude\s+(\S+)", text)
    excluded = {_canonical(n) for n in exclude.split(",")}
    # `COPY processor/core/ ...` and `COPY processor/*.py ...` both bring in `processor`.
    folders = set(re.findall(r"^COPY\s+(\w+)/", text, flags=re.M))
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [Requirement(p) for p in pins if _canonical(Requirement(p).name) not in excluded]
    # pip resolves dependencies in the image; walk the same graph through installed metadata.
    dists: set[str] = set()
    todo = [(r.name, frozenset(r.extras)) for r in wanted]
    while todo:
        dist_name, extras = todo.pop()
        key = _canonical(dist_name)
        if key in dists and not extras:
            continue
        dists.add(key)
        for spec in metadata.requires(dist_name) or []:
            req = Requirement(spec)
            if req.marker and not any(
                req.marker.evaluate({"extra": e, "python_version": "3.12"}) for e in extras | {""}
            ):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return dists, folders


# ------------------------------------------------------------------ licences ----------------


def _licences(dist: str) -> list[str]:
    meta = metadata.metadata(dist)
    found = [meta.get("License-Expression") or "", (meta.get("License") or "")[:200]]
    found += [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return [x for x in found if x]


def _gpl(text: str) -> bool:
    """GPL, AGPL, but not LGPL (libvips, libheif and libde265 are LGPL shared libraries)."""
    return bool(re.search(r"(?<![L])GPL|GNU (Affero )?General Public", text))


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_no_image_ships_a_gpl_component(name: str) -> None:
    dists, _ = image_contents(name)
    assert "pillow-heif" not in dists, "pillow-heif bundles x265 (GPL): dev/test only"
    for dist in sorted(dists):
        gpl = [text for text in _licences(dist) if _gpl(text)]
        assert not gpl, f"{dist} in the {name} image is GPL: {gpl}"
