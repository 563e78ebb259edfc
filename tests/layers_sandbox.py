"""`pytest -m unit -p tests.layers_sandbox`: the unit tests with libvips, moto and the network
made unavailable, to prove they need none of them.

Only modules whose ``pytestmark`` is ``unit`` are collected (tests/layers.py reads it from the
source, so no other module is imported); importing libvips, pi-heif, pillow-heif or moto then
raises ImportError, and opening an internet socket raises OSError.
"""

from __future__ import annotations

import importlib.abc
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.layers import module_layers

UNAVAILABLE = ("pyvips", "_libvips", "pi_heif", "pillow_heif", "moto")


class _Unavailable(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.split(".")[0] in UNAVAILABLE:
            raise ImportError(f"{fullname} is unavailable to unit tests")


def _no_network(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError("the network is unavailable to unit tests")
    return _connect(self, *args, **kwargs)


_connect = socket.socket.connect


def pytest_configure(config: pytest.Config) -> None:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in UNAVAILABLE)
    if loaded:
        raise pytest.UsageError(f"already imported before the sandbox: {loaded}")
    sys.meta_path.insert(0, _Unavailable())
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.socket.connect_ex = _no_network  # type: ignore[method-assign]


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if (
        collection_path.is_file()
        and collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
    ):
        return module_layers(collection_path) != {"unit"}
    return None
