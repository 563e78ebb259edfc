"""What each Lambda image is made of, read from its Dockerfile and pyproject.toml's pins: its
command, the distributions pip installs into it (dependencies resolved through this venv's
installed metadata), and the project folders it copies."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement

from tests.infra.conftest import DOCKERFILES, ROOT

# The build-context sources of each COPY (not --from a stage), past its --chmod option.
COPY_SOURCES = re.compile(r"^COPY\s+(?!--from)(?:--chmod=\S+\s+)?(.+?)\s+\S+$", flags=re.M)


def dockerfile_cmd(name: str) -> str:
    text = DOCKERFILES[name].read_text()
    (cmd,) = re.findall(r"^CMD\s+(\[.*\])\s*$", text, flags=re.M)
    (handler,) = json.loads(cmd)
    return str(handler)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_contents(name: str) -> tuple[set[str], set[str]]:
    """(distributions installed in the image, project folders copied into it)."""
    text = DOCKERFILES[name].read_text()
    (exclude,) = re.findall(r"--exclude\s+(\S+)", text)
    excluded = {canonical(n) for n in exclude.split(",")}
    # `COPY processor/core/ ...` and `COPY processor/*.py ...` both bring in `processor`.
    folders = set(re.findall(r"^COPY\s+(?:--chmod=\S+\s+)?(\w+)/", text, flags=re.M))
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = [Requirement(p) for p in pins if canonical(Requirement(p).name) not in excluded]
    # pip resolves dependencies in the image; walk the same graph through installed metadata.
    dists: set[str] = set()
    todo = [(r.name, frozenset(r.extras)) for r in wanted]
    while todo:
        dist_name, extras = todo.pop()
        key = canonical(dist_name)
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
