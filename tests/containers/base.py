"""The stand-in Lambda base image: Debian bookworm from mmdebstrap, plus what Lambda's has.

``public.ecr.aws/lambda/python`` cannot be pulled here, so the tests build the function
images on a base made from Debian's packages (tests/containers/standin/Dockerfile says what it
copies of the real one and what it does not). Making it takes a minute (mmdebstrap, then pip
installs awslambdaric), so it is cached: ``docker save`` output under the user's cache
directory, named by the hash of everything that goes into it. A cache hit is a `docker load`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tests.containers.engine import DockerEngine, EngineError

ROOT = Path(__file__).resolve().parents[2]
RECIPE = Path(__file__).resolve().parent / "standin"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SUITE = "bookworm"
PACKAGES = ("python3", "python3-pip", "ca-certificates")
MMDEBSTRAP = ("mmdebstrap", "--quiet", "--variant=apt", f"--include={','.join(PACKAGES)}", SUITE)
REPOSITORY = "imgpipe-standin-base"
# Lambda's names for the machine's architecture (the template's Architecture parameter).
ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Base:
    ref: str  # the image to pass as BASE_IMAGE
    architecture: str  # the Lambda name of its architecture: x86_64 or arm64
    seconds: float  # time to make or load it
    source: str  # "engine", "cache" or "built"


def architecture() -> str:
    machine = platform.machine()
    if machine not in ARCHITECTURES:
        raise EngineError(f"Lambda has no {machine} architecture")
    return ARCHITECTURES[machine]


def runtime_client_pin() -> str:
    """awslambdaric's pin: pyproject.toml's `lambda-standin` extra (the one pin list)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (pin,) = project["optional-dependencies"]["lambda-standin"]
    return str(pin)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imgpipe" / "standin-base"


def content_key() -> str:
    """Changes when anything that goes into the base does (the Debian archive aside)."""
    digest = hashlib.sha256()
    for part in (
        "\0".join(MMDEBSTRAP).encode(),
        architecture().encode(),
        runtime_client_pin().encode(),
        CA_BUNDLE.read_bytes(),
        *(p.read_bytes() for p in sorted(RECIPE.iterdir())),
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def ensure_base(engine: DockerEngine) -> Base:
    key = content_key()
    ref = f"{REPOSITORY}:{key}"
    started = time.monotonic()
    arch = architecture()
    if engine.has_image(ref):
        return Base(ref, arch, time.monotonic() - started, "engine")
    cache = cache_dir()
    saved = cache / f"{key}.tar"
    if saved.is_file():
        done = engine.run("load", "--quiet", "--input", str(saved), check=False)
        if done.returncode == 0 and engine.has_image(ref):
            return Base(ref, arch, time.monotonic() - started, "cache")
        saved.unlink(missing_ok=True)  # damaged: make it again
    _build(engine, ref, key)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"{key}.tar.partial-{os.getpid()}"
    engine.run("save", "--output", str(partial), ref)
    partial.replace(saved)
    for old in cache.glob("*.tar"):
        if old != saved:
            old.unlink(missing_ok=True)  # a base nothing builds on any more
    return Base(ref, arch, time.monotonic() - started, "built")


def _build(engine: DockerEngine, ref: str, key: str) -> None:
    if shutil.which("mmdebstrap") is None:
        raise EngineError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    rootfs = f"{REPOSITORY}-rootfs:{key}"
    with tempfile.TemporaryDirectory(prefix="imgpipe-standin-") as tmp:
        work = Path(tmp)
        tarball = work / "rootfs.tar"
        done = subprocess.run(
            [*MMDEBSTRAP, str(tarball)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise EngineError(f"mmdebstrap failed ({done.returncode}):\n{done.stderr[-4000:]}")
        engine.run("import", str(tarball), rootfs)
        tarball.unlink()
        context = work / "context"
        shutil.copytree(RECIPE, context)
        shutil.copy(CA_BUNDLE, context / "ca-certificates.crt")
        engine.run(
            "build",
            "--network", "host",
            "--build-arg", f"ROOTFS={rootfs}",
            "--build-arg", f"AWSLAMBDARIC={runtime_client_pin()}",
            "--tag", ref,
            str(context),
        )  # fmt: skip
    engine.run("rmi", rootfs, check=False)  # only the tag: the layers are the base's now
