"""The processor's scratch space for spooled uploads: one directory per process, stale ones
cleared at cold start.

Lambda keeps /tmp between invocations of an execution environment, and a timed-out invocation
is stopped mid-spool: its file stays behind, and the next upload near the size limit would not
fit in the ephemeral storage sized for one. Each process owns a directory under the root,
marked by an exclusive ``flock`` that the kernel drops when the process ends, however it ends.
A directory whose lock can be taken belongs to no living process and is removed. No clock or
pid is involved, so this is also right where several processes share one /tmp (the local
stack's execution environments, parallel tests).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT_NAME = "imgpipe-spool"
_OWNER = ".owner"
# The owner locks of this process: open (and so locked) until the process ends.
_held: list[int] = []


@dataclass(frozen=True)
class Scratch:
    directory: Path  # this process's own, for the engine's spool files
    cleared: int  # stale directories removed
    cleared_bytes: int
    free_bytes: int  # free space for spools, after the clearing


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / ROOT_NAME


def claim(root: Path | None = None, *, room_for: int = 0) -> Scratch:
    """Remove the directories of ended processes, then make and lock one for this process.

    ``room_for``: the largest upload (bytes) a spool must hold. Less free space than that is
    logged as an error at cold start, naming the setting, rather than found mid-upload.
    """
    root = root or default_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Claims take turns: a directory is briefly unlocked between its creation and its lock.
    guard = os.open(root / ".claim", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        cleared, cleared_bytes = _clear_stale(root)
        own = Path(tempfile.mkdtemp(prefix="spool-", dir=root))
        owner = os.open(own / _OWNER, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _held.append(owner)
    finally:
        os.close(guard)
    if cleared:
        # Only an invocation that was stopped (timeout, out of memory) leaves these.
        log.warning(
            "cleared stale spool files",
            extra={"directories": cleared, "bytes": cleared_bytes},
        )
    free = shutil.disk_usage(own).free
    if free < room_for:
        log.error(
            "too little ephemeral storage for the upload limit: raise the function's "
            "EphemeralStorage (make deploy sets it from MaxUploadBytes)",
            extra={"free_bytes": free, "max_input_bytes": room_for},
        )
    return Scratch(own, cleared, cleared_bytes, free)


def _clear_stale(root: Path) -> tuple[int, int]:
    cleared = cleared_bytes = 0
    for child in root.iterdir():
        if not child.is_dir() or child.is_symlink():
            continue
        if _in_use(child / _OWNER):
            continue
        cleared_bytes += sum(f.stat().st_size for f in child.rglob("*") if f.is_file())
        shutil.rmtree(child, ignore_errors=True)
        cleared += 1
    return cleared, cleared_bytes


def _in_use(owner: Path) -> bool:
    try:
        fd = os.open(owner, os.O_RDWR)
    except FileNotFoundError:
        return False  # never locked: its process ended between creating and locking it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock just taken
    return False
