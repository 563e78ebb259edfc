"""`imgpipe`: one console script, one module per subcommand under processor/commands/.

Each command module has ``register(subparsers)`` which adds its parser and sets
``func(args) -> int``. Modules are imported here only to build the parser; the heavy imports
(pyvips, boto3, uvicorn) happen inside each command's ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "processor.commands.process",
    "processor.commands.ops",
    "processor.commands.local",
    "processor.commands.upload",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgpipe", description="Event-driven image pipeline: libvips renditions on AWS."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue  # a command not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
