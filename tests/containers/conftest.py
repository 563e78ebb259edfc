"""Session fixtures of the image tests: one engine, one stand-in base, both images built.

The images are built the way `make image` builds them (``python -m infra.deploy build``);
only the base (the stand-in, see base.py) and the architecture (this machine's) differ from
a user's build, plus ``--network host`` for an engine without a bridge.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.containers import report as image_report
from tests.containers.base import Base, ensure_base
from tests.containers.engine import DockerEngine

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("processor", "api")


@dataclass(frozen=True)
class Built:
    name: str
    ref: str
    seconds: float  # wall time of its build (both run at once)
    size: int  # bytes, uncompressed (docker image inspect)
    base: Base


@pytest.fixture(scope="session")
def report() -> Iterator[image_report.Report]:
    collected = image_report.Report()
    yield collected
    collected.write()


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    started = DockerEngine.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def base(engine: DockerEngine, report: image_report.Report) -> Base:
    made = ensure_base(engine)
    report.add(f"base.{made.source}_s", made.seconds)
    report.add("base.size_mb", engine.inspect(made.ref)["Size"] / 1e6)
    return made


def build(engine: DockerEngine, base: Base, name: str, tag: str) -> Built:
    """`python -m infra.deploy build` for one image, as a developer runs it."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "infra.deploy", "build",
            "--image", name,
            "--architecture", base.architecture,
            "--base-image", base.ref,
            "--network", "host",
            "--tag", tag,
        ],
        cwd=ROOT,
        env=engine.env,
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    ref = engine.built(f"imgpipe/{name}:{tag}")
    if done.returncode != 0:
        raise AssertionError(f"building {name} failed:\n{done.stdout[-6000:]}\n{done.stderr}")
    size = int(engine.inspect(ref)["Size"])
    return Built(name, ref, time.monotonic() - started, size, base)


@pytest.fixture(scope="session")
def images(engine: DockerEngine, base: Base, report: image_report.Report) -> dict[str, Built]:
    """Both images, built at once (they share the base and the first layers)."""
    tag = f"test-{os.getpid()}"
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(NAMES)) as pool:
        built = dict(
            zip(NAMES, pool.map(lambda n: build(engine, base, n, tag), NAMES), strict=True)
        )
    report.add("build.both_wall_s", time.monotonic() - started)
    for name, image in built.items():
        report.add(f"{name}.build_s", image.seconds)
        report.add(f"{name}.size_mb", image.size / 1e6)
    return built
