"""What ships is what runs: each Lambda image copies its handler's import closure, no more.

The closure is computed from the source by grimp (the import graph import-linter checks the
layers on, pyproject.toml): every module of ours the handler imports, at import time or
lazily inside a function, and the packages around them (Python runs each ``__init__``).
``if TYPE_CHECKING:`` imports are left out: they never run. What the Dockerfile's final stage
copies is read from its COPY lines: a folder is one package, a file or glob is modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

from tests.infra.conftest import DOCKERFILES, ROOT
from tests.infra.images import COPY_SOURCES

pytestmark = pytest.mark.unit

OURS = ("processor", "api", "infra", "benchmarks", "cli")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*OURS, exclude_type_checking_imports=True, cache_dir=None)


def closure(graph: grimp.ImportGraph, entry: str) -> set[str]:
    """``entry`` and every module of ours it imports, directly or not, with their packages."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(
            m for m in graph.find_modules_directly_imported_by(module) if m in graph.modules
        )
    return seen | {parent for m in seen for parent in _parents(m)}


def _parents(module: str) -> Iterable[str]:
    parts = module.split(".")
    return (".".join(parts[:n]) for n in range(1, len(parts)))


def entry_module(dockerfile: Path) -> str:
    """The module of the image's handler: CMD ["processor.entrypoints.handler.lambda_handler"]."""
    (cmd,) = re.findall(r'^CMD \["([\w.]+)"\]$', dockerfile.read_text(), flags=re.M)
    return cmd.rpartition(".")[0]


def copied(dockerfile: Path) -> tuple[set[str], set[str]]:
    """(packages copied whole, modules copied one by one) by the final stage."""
    text = dockerfile.read_text()
    final = text[text.rindex("\nFROM ") :]
    packages: set[str] = set()
    modules: set[str] = set()
    for sources in COPY_SOURCES.findall(final):
        for source in sources.split():
            if source.endswith("/"):
                packages.add(source.rstrip("/").replace("/", "."))
                continue
            paths = sorted(p.relative_to(ROOT) for p in ROOT.glob(source))
            assert paths, f"{dockerfile.name}: COPY {source} matches nothing"
            modules.update(_module_name(p) for p in paths)
    return packages, modules


def _module_name(path: Path) -> str:
    assert path.suffix == ".py", f"not a module: {path}"
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_each_image_copies_exactly_its_handlers_import_closure(graph, image):
    dockerfile = DOCKERFILES[image]
    needed = closure(graph, entry_module(dockerfile))
    packages, modules = copied(dockerfile)

    def unit(module: str) -> str | None:
        """The COPY that puts ``module`` into the image (None: nothing does)."""
        if module in modules:
            return module
        return next((p for p in packages if module == p or module.startswith(p + ".")), None)

    missing = sorted(m for m in needed if unit(m) is None)
    assert not missing, f"{dockerfile.name} does not copy what its handler imports: {missing}"
    used = {unit(m) for m in needed}
    unused = sorted((packages | modules) - used)
    assert not unused, f"{dockerfile.name} copies what its handler never imports: {unused}"


def test_the_closures_are_what_the_layers_say(graph):
    # The processor's function runs no API and no local stack; the API's runs no engine.
    processor = closure(graph, entry_module(DOCKERFILES["processor"]))
    api = closure(graph, entry_module(DOCKERFILES["api"]))
    assert {
        "processor.imaging.engine",
        "processor.service.images",
        "processor.rules.decide",
    } <= processor
    assert not {m for m in processor if m.split(".")[0] != "processor"}
    assert not {m for m in processor if m.startswith(("cli.local", "cli.commands"))}
    assert {"api.app", "processor.core.record", "processor.aws.dynamo"} <= api
    assert not {
        m
        for m in api
        if m.startswith("processor.")
        and m.split(".")[1]
        not in {
            "core",
            "aws",
        }
    }
