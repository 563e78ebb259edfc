"""A Docker engine for the image tests: the one given by DOCKER_HOST, or one of our own.

Our own is a root ``dockerd`` with everything in a temporary directory (data root, exec
root, pid file, unix socket) and no networking of its own: ``--bridge=none`` and no iptables
rules, so containers and builds use the host's network (``--network host``), which is what
lets them reach the test's loopback servers (moto, the Lambda Runtime API, the registry).
``stop()`` stops it by its pid and removes the directory; on an engine we were given, it
removes only the containers and images this session made.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# overlay2 cannot stack on these (an overlay upper dir on an overlay mount is refused).
NO_OVERLAY = {"overlay", "aufs", "fuse.fuse-overlayfs"}
START_TIMEOUT_S = 60.0
PREFIX = "imgpipe-dockerd-"
# A directory of ours older than this whose dockerd is gone was left by a killed run.
STALE_AFTER_S = 600
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EngineError(Exception):
    pass


def _filesystem(path: Path) -> str:
    """The type of the file system holding ``path``, from /proc/mounts (longest mount prefix)."""
    best, kind = "", ""
    resolved = str(path.resolve())
    with contextlib.suppress(OSError), Path("/proc/mounts").open(encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) < 3:
                continue
            point = fields[1].replace("\\040", " ")
            inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind


def storage_driver(root: Path) -> str:
    """overlay2 where the data root's file system can hold it, else vfs (slow but works)."""
    return "vfs" if _filesystem(root) in NO_OVERLAY else "overlay2"


class DockerEngine:
    """Runs the `docker` CLI against one engine and remembers what it made there."""

    def __init__(self, host: str, env: dict[str, str], *, owned: bool) -> None:
        self.host = host
        # The legacy builder: it honours --network host and needs no front-end image (BuildKit
        # would pull docker/dockerfile for the `# syntax=` line; nothing can be pulled here).
        self.env = {**env, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"}
        self.owned = owned
        self.storage = ""
        self.containers: list[str] = []
        self.images: list[str] = []
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    def start(cls, parent: Path | None = None) -> DockerEngine:
        """The engine DOCKER_HOST names, else a new dockerd of our own (needs root)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        given = os.environ.get("DOCKER_HOST")
        if given:
            engine = cls(given, env, owned=False)
            engine.wait_ready(START_TIMEOUT_S)
            return engine
        if shutil.which("dockerd") is None:
            raise EngineError("dockerd is not installed (apt-get install docker.io)")
        if os.geteuid() != 0:
            raise EngineError("starting a dockerd needs root; or set DOCKER_HOST to an engine")
        parent = parent or Path("/var/tmp")
        _remove_stale(parent)
        # Short paths: the unix sockets live under it (108 bytes at most).
        work = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
        engine = cls(f"unix://{work}/docker.sock", env, owned=True)
        engine._dir = work
        engine.storage = storage_driver(work)
        log = (work / "dockerd.log").open("wb")
        try:
            engine._process = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root", str(work / "data"),
                    "--exec-root", str(work / "exec"),
                    "--pidfile", str(work / "dockerd.pid"),
                    "--host", engine.host,
                    "--storage-driver", engine.storage,
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal is ours to pass on, not its
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        finally:
            log.close()
        try:
            engine.wait_ready(START_TIMEOUT_S)
        except BaseException:
            engine.stop()
            raise
        return engine

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            done = self.run("version", "--format", "{{.Server.Version}}", check=False)
            if done.returncode == 0:
                return
            if self._process is not None and self._process.poll() is not None:
                raise EngineError(f"dockerd exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise EngineError(f"no Docker engine answers on {self.host}:\n{self.log_tail()}")
            time.sleep(0.25)

    def log_tail(self, lines: int = 30) -> str:
        if self._dir is None:
            return ""
        with contextlib.suppress(OSError):
            text = (self._dir / "dockerd.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Remove what this session made; stop our dockerd by pid and delete its directory."""
        for container in reversed(self.containers):
            self.run("rm", "--force", "--volumes", container, check=False)
        self.containers.clear()
        if not self.owned:
            for image in reversed(self.images):
                self.run("rmi", "--force", image, check=False)
            self.images.clear()
            return
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._dir is not None:
            _unmount_under(self._dir)
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # --- the CLI ----------------------------------------------------------------------------

    def run(
        self,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
        timeout: float | None = 600,
    ) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, input=input, timeout=timeout
        )
        if check and done.returncode != 0:
            raise EngineError(
                f"docker {' '.join(args[:3])} failed ({done.returncode}):\n"
                + done.stderr.decode(errors="replace")[-4000:]
            )
        return done

    def text(self, *args: str) -> str:
        return self.run(*args).stdout.decode().strip()

    def inspect(self, ref: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.text("image", "inspect", ref))
        return data[0]

    def has_image(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0

    def built(self, ref: str) -> str:
        """Remember an image this session made (an engine we were given gets it removed)."""
        self.images.append(ref)
        return ref

    def create(self, args: Sequence[str]) -> str:
        container = self.text("create", *args)
        self.containers.append(container)
        return container

    def remove(self, container: str) -> None:
        self.run("rm", "--force", container, check=False)
        with contextlib.suppress(ValueError):
            self.containers.remove(container)

    @contextlib.contextmanager
    def container(self, args: Sequence[str]) -> Iterator[str]:
        container = self.create(args)
        try:
            yield container
        finally:
            self.remove(container)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _remove_stale(parent: Path) -> None:
    """Directories of runs that were killed before they could clean up (never a live one)."""
    for old in parent.glob(f"{PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime < STALE_AFTER_S:
                continue  # perhaps a run starting right now, before its pid file exists
            if _alive(old / "dockerd.pid"):
                continue
            _unmount_under(old)
            shutil.rmtree(old, ignore_errors=True)


def _unmount_under(path: Path) -> None:
    """Overlay mounts a killed dockerd left behind would make the directory unremovable."""
    prefix = str(path.resolve()) + "/"
    with contextlib.suppress(OSError), Path("/proc/mounts").open(encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
