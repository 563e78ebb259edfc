"""Every test names its layer once, and `unit` means what pyproject.toml says.

Each test module carries exactly one layer marker in its ``pytestmark`` (and no test adds
another): ``unit`` (pure code: no libvips, no AWS, no network), ``integration`` (real
libvips, moto, a local server), ``e2e`` (the local stack as a subprocess), ``browser``
(headless Chromium) or ``image`` (container images on a Docker engine). A module without one,
or with two, stops the run at collection.

``-p tests.layers_sandbox`` (tests/layers_sandbox.py) runs the unit tests with libvips, moto and
the network unavailable, so the claim is checked, not trusted.
"""

from __future__ import annotations

import ast
import os
from collections import defaultdict
from pathlib import Path

import pytest

LAYERS = ("unit", "integration", "e2e", "browser", "image")


def module_layers(path: Path) -> set[str]:
    """The layer markers a test module's ``pytestmark`` names, read from its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            marks = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            return {ast.unparse(m).rpartition(".")[2].split("(")[0] for m in marks} & set(LAYERS)
    return set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seen: dict[Path, set[str]] = defaultdict(set)
    for item in items:
        path = Path(str(item.fspath))
        seen[path] |= {m.name for m in item.iter_markers() if m.name in LAYERS}
    wrong = []
    for path, layers in sorted(seen.items()):
        declared = module_layers(path)
        if len(declared) != 1 or layers != declared:
            where = os.path.relpath(path)
            wrong.append(f"{where}: pytestmark names {sorted(declared)}, tests {sorted(layers)}")
    if wrong:
        raise pytest.UsageError(
            "each test module needs exactly one layer marker in its pytestmark "
            f"({', '.join(LAYERS)}), and no test another:\n  " + "\n  ".join(wrong)
        )
