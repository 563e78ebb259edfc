"""Print pyproject.toml's runtime pins as a requirements file, for the image builder stage.

The project declares its dependencies once, in pyproject.toml. The Dockerfiles install from
this output so the images cannot drift from the pins the tests ran against. ``--exclude``
drops packages one function does not import (the API never loads libvips; the processor never
serves HTTP), which keeps each image small.

Usage: python requirements.py pyproject.toml [--exclude name,name] > requirements.txt
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

# A PEP 508 requirement's distribution name: letters, digits, ".", "-", "_".
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised name, so "PyVips_Binary" and "pyvips-binary" compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path, exclude: set[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    pins: dict[str, str] = {}
    for spec in project["dependencies"]:
        match = _NAME.match(spec)
        if match is None:
            raise ValueError(f"cannot read a package name from {spec!r}")
        if "==" not in spec:
            raise ValueError(f"{spec!r} is not pinned with ==; images install exact pins only")
        pins[canonical(match.group(1))] = spec.strip()
    wanted = {canonical(n) for n in exclude}
    unknown = wanted - pins.keys()
    if unknown:
        # A typo here would silently ship a package the image was meant to leave out.
        raise ValueError(
            f"--exclude names packages pyproject.toml does not list: {sorted(unknown)}"
        )
    return [spec for name, spec in pins.items() if name not in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--exclude", default="", help="comma-separated package names to leave out")
    args = parser.parse_args(argv)
    exclude = {n.strip() for n in args.exclude.split(",") if n.strip()}
    try:
        lines = requirements(args.pyproject, exclude)
    except ValueError as e:
        sys.stderr.write(f"requirements.py: {e}\n")
        return 2
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
