"""`imgpipe upload PATH...`: upload files and folders through the API, straight into S3.

Each file gets a presigned POST (``POST /uploads``), or a multipart upload with presigned
part URLs when it is big (``/uploads/multipart``), exactly what the gallery and any other
client do. The bytes never pass through the API. With ``--wait`` each image's final record
(``GET /images/{id}`` once it is done or failed) is printed as one JSON line; without it, one
line per upload says where it went.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TextIO

from processor.core.errors import Refused

DEFAULT_API = "http://127.0.0.1:8000"
MiB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 32 * MiB
FINAL = {"done", "failed", "deleted"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "upload",
        help="upload images through the API (presigned POST, multipart for big files)",
        description="Upload files and folders (recursively) to a running stack or to AWS. "
        "Prints one JSON line per file; with --wait, each image's final record. Exit 0 when "
        "every upload (and with --wait, every image) succeeded, 1 otherwise.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument(
        "--api",
        default=os.environ.get("IMGPIPE_API_URL", DEFAULT_API),
        help=f"API base URL (default: $IMGPIPE_API_URL or {DEFAULT_API})",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("IMGPIPE_API_KEY"),
        help="x-api-key header (default: $IMGPIPE_API_KEY, else the local stack's key)",
    )
    p.add_argument("--wait", action="store_true", help="wait for processing; print records")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits per image")
    p.add_argument("--jobs", type=int, default=4, help="files uploaded in parallel (default: 4)")
    p.add_argument(
        "--multipart-threshold",
        type=int,
        default=DEFAULT_MULTIPART_THRESHOLD,
        metavar="BYTES",
        help=f"multipart upload from this size on (default: {DEFAULT_MULTIPART_THRESHOLD})",
    )
    p.set_defaults(func=run)


def iter_files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name[0] != ".")
        else:
            yield path


def content_type(path: Path) -> str:
    """From the bytes when the pipeline knows the format (processor/core/formats.py), else
    from the name.

    A type the API does not accept (image/svg+xml) is sent anyway: the API's refusal is the
    answer the user should see.
    """
    from processor.core.formats import content_type_for
    from processor.core.sniff import SNIFF_BYTES, detect_format

    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    fmt = detect_format(head)
    if fmt is not None:
        return content_type_for(fmt)
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class ByteProgress:
    """One bar for all files, in bytes; drawn on stderr only when it is a terminal."""

    def __init__(self, total_bytes: int, files: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.total, self.files = max(total_bytes, 1), files
        self.sent = self.finished = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, n: int = 0, *, file_done: bool = False) -> None:
        with self._lock:
            self.sent += n
            self.finished += file_done
            if not self.enabled:
                return
            width = 30
            filled = min(width, int(width * self.sent / self.total))
            rate = self.sent / MiB / max(time.monotonic() - self.started, 1e-6)
            self.stream.write(
                f"\rupload [{'#' * filled}{'-' * (width - filled)}] "
                f"{self.sent / MiB:.1f}/{self.total / MiB:.1f} MiB {rate:.1f} MiB/s "
                f"{self.finished}/{self.files} files "
            )
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class _Counting:
    """A file object that reports how much of it has been read (httpx streams uploads)."""

    def __init__(self, f: IO[bytes], progress: ByteProgress) -> None:
        self._f, self._progress = f, progress

    def read(self, n: int = -1) -> bytes:
        chunk = self._f.read(n)
        self._progress.advance(len(chunk))
        return chunk

    def fileno(self) -> int:
        return self._f.fileno()

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)


def _check(response: Any, what: str) -> Any:
    if response.status_code < 400:
        return response
    code, message = f"http_{response.status_code}", response.text[:500]
    if "json" in response.headers.get("content-type", ""):
        problem = response.json()
        code = str(problem.get("code", code))
        message = str(problem.get("detail") or problem.get("title") or message)
        if problem.get("errors"):
            message += ": " + "; ".join(
                f"{'.'.join(str(x) for x in e.get('loc', []))} {e.get('msg', '')}"
                for e in problem["errors"]
            )
    elif "<Code>" in response.text:  # S3's XML error
        code = response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    raise Refused(code, f"{what}: {message}")


class Uploader:
    def __init__(
        self,
        client: Any,
        api: str,
        api_key: str,
        progress: ByteProgress,
        multipart_threshold: int,
    ) -> None:
        self.client, self.api, self.progress = client, api.rstrip("/"), progress
        self.headers = {"x-api-key": api_key}
        self.multipart_threshold = multipart_threshold

    def upload(self, path: Path) -> dict[str, Any]:
        """One file; returns what to print (without --wait)."""
        size = path.stat().st_size
        if size == 0:  # said here: the API's answer would be about a field, not the file
            raise Refused("empty_file", f"{path.name} is empty (0 bytes): nothing to upload")
        ctype = content_type(path)
        if size >= self.multipart_threshold:
            uploaded = self._multipart(path, size, ctype)
        else:
            uploaded = self._post(path, size, ctype)
        return {"source": str(path), "status": "uploaded", "bytes": size, **uploaded}

    def _post(self, path: Path, size: int, ctype: str) -> dict[str, Any]:
        body = {"filename": path.name, "content_type": ctype, "size": size}
        form = _check(
            self.client.post(f"{self.api}/uploads", json=body, headers=self.headers), "upload"
        ).json()
        with path.open("rb") as f:
            _check(
                self.client.post(
                    form["url"],
                    data=form["fields"],
                    files={"file": (path.name, _Counting(f, self.progress), ctype)},
                ),
                "S3 POST",
            )
        return {"id": form["id"], "key": form["key"]}

    def _multipart(self, path: Path, size: int, ctype: str) -> dict[str, Any]:
        body = {"filename": path.name, "content_type": ctype, "size": size}
        started = _check(
            self.client.post(f"{self.api}/uploads/multipart", json=body, headers=self.headers),
            "multipart upload",
        ).json()
        upload_id, key, part_size = started["upload_id"], started["key"], started["part_size"]
        base = f"{self.api}/uploads/multipart/{upload_id}"
        try:
            etags: dict[int, str] = {}
            numbers = list(range(1, started["part_count"] + 1))
            step = started["max_parts_per_request"]
            for first in range(0, len(numbers), step):
                batch = numbers[first : first + step]
                urls = _check(
                    self.client.post(
                        f"{base}/parts",
                        json={"key": key, "size": size, "part_numbers": batch},
                        headers=self.headers,
                    ),
                    "part URLs",
                ).json()["parts"]

                def put(part: dict[str, Any]) -> None:
                    n = part["part_number"]
                    with path.open("rb") as f:
                        f.seek((n - 1) * part_size)
                        data = f.read(part_size)
                    response = _check(self.client.put(part["url"], content=data), f"part {n}")
                    etags[n] = response.headers["etag"]
                    self.progress.advance(len(data))

                with ThreadPoolExecutor(max_workers=min(4, len(urls))) as pool:
                    list(pool.map(put, urls))
            parts = [{"part_number": n, "etag": etags[n]} for n in sorted(etags)]
            done = _check(
                self.client.post(
                    f"{base}/complete", json={"key": key, "parts": parts}, headers=self.headers
                ),
                "complete",
            ).json()
        except BaseException:
            # Free the stored parts; S3 would keep (and bill) them otherwise.
            self.client.delete(base, params={"key": key}, headers=self.headers)
            raise
        return {"id": done["id"], "key": done["key"], "multipart": True}

    def wait(self, uploaded: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The image's record once it is done, failed or deleted."""
        deadline = time.monotonic() + timeout_s
        delay = 0.2
        url = f"{self.api}/images/{uploaded['id']}"
        while True:
            response = self.client.get(url, headers=self.headers)
            if response.status_code == 200:
                record: dict[str, Any] = response.json()
                if record.get("status") in FINAL:
                    return {"source": uploaded["source"], **record}
            elif response.status_code != 404:  # 404: S3's event has not been processed yet
                _check(response, "image")
            if time.monotonic() > deadline:
                return {
                    "source": uploaded["source"],
                    "id": uploaded["id"],
                    "status": "timeout",
                    "error": {"code": "timeout", "message": f"not final after {timeout_s:.0f} s"},
                }
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)


def run(args: argparse.Namespace) -> int:
    import httpx

    from cli.local import LOCAL_API_KEY

    if args.jobs < 1:
        print("imgpipe upload: --jobs must be at least 1", file=sys.stderr)
        return 2
    files = list(iter_files(args.paths))
    missing = [p for p in files if not p.is_file()]
    if missing:
        print(f"imgpipe upload: no such file: {missing[0]}", file=sys.stderr)
        return 2
    progress = ByteProgress(sum(p.stat().st_size for p in files), len(files))
    lock = threading.Lock()
    failures = 0

    def emit(line: dict[str, Any]) -> None:
        nonlocal failures
        with lock:
            ok = line.get("status") == "done" if args.wait else line.get("status") == "uploaded"
            failures += not ok
            if progress.enabled:
                sys.stderr.write("\r\x1b[K")  # clear the bar; it is drawn again next advance
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    with httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0)) as client:
        uploader = Uploader(
            client, args.api, args.api_key or LOCAL_API_KEY, progress, args.multipart_threshold
        )

        def one(path: Path) -> None:
            try:
                uploaded = uploader.upload(path)
            except Refused as e:
                error = {"code": e.code, "message": e.message}
                emit({"source": str(path), "status": "refused", "error": error})
                return
            except (httpx.HTTPError, OSError) as e:
                error = {"code": "unreachable", "message": f"{type(e).__name__}: {e}"}
                emit({"source": str(path), "status": "refused", "error": error})
                return
            finally:
                progress.advance(file_done=True)
            if not args.wait:
                emit(uploaded)
                return
            try:
                emit(uploader.wait(uploaded, args.timeout))
            except (Refused, httpx.HTTPError) as e:
                error = {"code": "unreachable", "message": str(e)}
                emit(
                    {"source": str(path), "id": uploaded["id"], "status": "unknown", "error": error}
                )

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(one, files))
    progress.close()
    return 1 if failures else 0
