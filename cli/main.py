"""`imgpipe`: one console script, one module per subcommand under cli/commands/.

Each command module has ``register(subparsers)`` which adds its parser and sets
``func(args) -> int``. Modules are imported here only to build the parser; the heavy imports
(pyvips, boto3, uvicorn) happen inside each command's ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMAND_MODULES = (
    "cli.commands.process",
    "cli.commands.ops",
    "cli.commands.local",
    "cli.commands.upload",
    "cli.commands.backfill",
)

# Commands that decode images in this process (or start processes that do): glibc gives every
# thread that mallocs an arena of its own (up to 8 per core), and the decode and encode threads
# each keep one. The Lambda image sets MALLOC_ARENA_MAX=2 (infra/template.yaml); these match it.
SMALL_ARENA_COMMANDS = frozenset({"local", "process"})


def reexec_with_small_malloc_arenas(command: str) -> None:
    """Run again, once, with MALLOC_ARENA_MAX=2 when it is missing: glibc reads it only at
    process start, so setting it from Python would change nothing."""
    if command not in SMALL_ARENA_COMMANDS or "MALLOC_ARENA_MAX" in os.environ:
        return
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    os.execve(sys.executable, [sys.executable, "-m", "cli.main", *sys.argv[1:]], env)


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
    if argv is None:  # the console script (an in-process caller keeps its own process)
        reexec_with_small_malloc_arenas(args.command)
    code: int = args.func(args)
    if argv is None and "pyarrow" in sys.modules:
        # Arrow's C++ threads abort an orderly interpreter exit now and then ("terminate
        # called without an active exception", apache/arrow #34314) after the work is done:
        # flushed, the command leaves without the interpreter's teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
