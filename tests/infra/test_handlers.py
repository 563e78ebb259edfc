"""Every handler the Dockerfiles or the template name imports and is callable, and no image
ships a GPL component (what each image is made of; tests/infra/test_dependency_sets.py runs
the handlers on exactly that)."""

from __future__ import annotations

import importlib
import re
from importlib import metadata

import pytest

from infra import template as tpl
from tests.infra.conftest import DOCKERFILES
from tests.infra.images import dockerfile_cmd, image_contents

pytestmark = pytest.mark.unit

# The image each function runs, and the Lambda function that runs it.
FUNCTION_OF = {"processor": "ProcessorFunction", "api": "ApiFunction"}


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
