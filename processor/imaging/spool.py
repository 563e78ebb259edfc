"""Step 1, spool: an upload on local disk with its hash, size and first bytes, read once.

Streams (an S3 body) are copied to a temporary file while hashing (deleted on close), so a
300 MB upload never sits in memory twice; paths are used in place. Over the byte limit the
copy stops and the upload is refused. libvips then decodes from the file with shrink-on-load.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO

from processor.core.config import check_bytes
from processor.core.sniff import SNIFF_BYTES

_CHUNK = 1024 * 1024


class Spooled:
    """An upload on local disk with its hash and size: read once, never held in memory."""

    def __init__(self, path: Path, sha256: str, size: int, head: bytes, owned: bool) -> None:
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.head = head
        self._owned = owned

    def close(self) -> None:
        if self._owned:
            self.path.unlink(missing_ok=True)
            self._owned = False

    def __enter__(self) -> Spooled:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def spool(source: str | Path | IO[bytes], max_bytes: int, tmp_dir: str | None = None) -> Spooled:
    """Hash and measure a path in place, or copy a stream to a temp file while hashing."""
    digest = hashlib.sha256()
    if isinstance(source, str | Path):
        path = Path(source)
        size = path.stat().st_size
        check_bytes(size, max_bytes)
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
            digest.update(head)
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return Spooled(path, digest.hexdigest(), size, head, owned=False)

    fd, name = tempfile.mkstemp(prefix="imgpipe-", dir=tmp_dir)
    path = Path(name)
    size = 0
    head = b""
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                check_bytes(size, max_bytes, at_least=True)
                if len(head) < SNIFF_BYTES:
                    head = (head + chunk)[:SNIFF_BYTES]
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path, digest.hexdigest(), size, head, owned=True)
