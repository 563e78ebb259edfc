"""End to end: `imgpipe local` as a subprocess, the whole corpus through it, then a clean stop.

GIVEN a stack on free ports
WHEN every corpus file is uploaded through the API (`imgpipe upload`) and straight to S3
THEN each good file is done and each bad one failed with the code the corpus README gives,
the renditions come back through the CDN routes with production headers, 304 and 206,
a deleted image goes away, and SIGTERM stops the stack with nothing left running.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from processor.core.keys import image_id
from tests.cli.conftest import IMGPIPE, StackProcess, alive, aws_client, children_of
from tests.conftest import BAD, BAD_CODES, GOOD, ROOT, bad_files, good_files
from tests.processor.imaging import heic_samples as hs

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.xdist_group("local_stack"),
    pytest.mark.timeout(240),
]

IMMUTABLE = "public, max-age=31536000, immutable"
# The API takes only image content types: these never reach the bucket through it.
REFUSED_BY_API = {"check.svg", "struct-image-04-t.svg", "relax.jp2"}


def wait_final(
    client: httpx.Client, api: str, ids: dict[str, str], timeout_s: float, key: str
) -> dict:
    """id -> final record (done/failed/deleted) for every id, polling GET /images/{id} with
    the key (without it, only done images exist)."""
    final: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(final) < len(ids) and time.monotonic() < deadline:
        for name, iid in ids.items():
            if name in final:
                continue
            response = client.get(f"{api}/images/{iid}", headers={"x-api-key": key})
            if response.status_code == 200 and response.json()["status"] != "processing":
                final[name] = response.json()
        time.sleep(0.5)
    missing = sorted(set(ids) - set(final))
    assert not missing, f"not final after {timeout_s} s: {missing}"
    return final


def test_local_stack_end_to_end(fake_aws: None) -> None:
    stack = StackProcess.start("--concurrency", "2")
    pids: set[int] = set()
    try:
        pids = children_of(stack.process.pid)  # environments, and multiprocessing's tracker
        environments = [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        # two of the processor (--concurrency 2) and the flusher's one
        assert len(environments) == 3, f"three execution environments expected: {pids}"
        with httpx.Client(timeout=30) as client:
            assert client.get(f"{stack.api}/healthz").status_code == 200
            assert client.get(f"{stack.api}/docs").status_code == 200

            # WHEN: every corpus file through the API with the CLI (big files: multipart)
            run = subprocess.run(
                [str(IMGPIPE), "upload", "--api", stack.api, "--wait", "--jobs", "4",
                 "--timeout", "150", str(GOOD), str(BAD)],
                capture_output=True, text=True, timeout=200, cwd=ROOT,
            )  # fmt: skip
            lines = [json.loads(line) for line in run.stdout.splitlines()]
            by_name = {line["source"].rsplit("/", 1)[-1]: line for line in lines}
            assert run.returncode == 1, run.stderr  # the bad files make it fail
            assert len(by_name) == len(good_files()) + len(bad_files())

            # ... and a few of them again as multipart uploads (one part each)
            multipart = subprocess.run(
                [str(IMGPIPE), "upload", "--api", stack.api, "--wait",
                 "--multipart-threshold", "1", str(BAD / "truncated.png"),
                 str(good_files()[0])],
                capture_output=True, text=True, timeout=120, cwd=ROOT,
            )  # fmt: skip
            multi = [json.loads(line) for line in multipart.stdout.splitlines()]
            assert {m["status"] for m in multi} == {"done", "failed"}, multipart.stderr
            assert all(m["source_key"].startswith("raw/") for m in multi)

            # ... and a phone photo: HEVC HEIC, stored landscape with irot and EXIF 6
            with tempfile.TemporaryDirectory(prefix="imgpipe-e2e-") as tmp:
                phone = hs.save(hs.pattern(96, 64), Path(tmp) / "IMG_0001.HEIC",
                                exif=hs.exif_bytes(6))  # fmt: skip
                heic = subprocess.run(
                    [str(IMGPIPE), "upload", "--api", stack.api, "--wait", str(phone)],
                    capture_output=True, text=True, timeout=120, cwd=ROOT,
                )  # fmt: skip
            (photo,) = [json.loads(line) for line in heic.stdout.splitlines()]
            assert (photo["status"], photo["format"]) == ("done", "heic"), heic.stderr
            assert (photo["width"], photo["height"]) == (64, 96)

            # ... and straight to the S3 endpoint, as any S3 client would
            s3 = aws_client("s3", stack.aws)
            direct: dict[str, str] = {}
            for path in [*good_files(), *bad_files()]:
                key = f"raw/direct/{path.name}"
                s3.put_object(Bucket=stack.bucket, Key=key, Body=path.read_bytes())
                direct[path.name] = image_id(stack.bucket, key)
            direct_final = wait_final(client, stack.api, direct, timeout_s=150, key=stack.api_key)

            # THEN: good files done, bad ones failed with the README's codes, both ways
            for path in good_files():
                api_line, s3_record = by_name[path.name], direct_final[path.name]
                assert api_line["status"] == "done", api_line
                assert s3_record["status"] == "done", s3_record
                assert api_line["width"] == s3_record["width"] > 0
                assert {r["name"] for r in api_line["renditions"]} == {"thumb", "optimized"}
            for path in bad_files():
                expected = BAD_CODES[path.name]
                api_line, s3_record = by_name[path.name], direct_final[path.name]
                assert s3_record["status"] == "failed", s3_record
                assert s3_record["error"]["code"] == expected, s3_record
                if path.name in REFUSED_BY_API:
                    assert api_line["status"] == "refused", api_line
                    assert api_line["error"]["code"] == "validation_error", api_line
                else:
                    assert api_line["status"] == "failed", api_line
                    assert api_line["error"]["code"] == expected, api_line

            # THEN: every rendition through the CDN stand-in, with production headers
            landscape = by_name["Landscape_1.jpg"]
            for record in [*(by_name[p.name] for p in good_files()), *direct_final.values()]:
                for rendition in record["renditions"]:
                    assert rendition["url"].startswith(stack.cdn + "/")
                    head = client.head(rendition["url"])
                    assert head.status_code == 200, rendition["url"]
                    assert head.headers["content-type"] == rendition["content_type"]
                    assert int(head.headers["content-length"]) == rendition["bytes"]
            # THEN: the animated GIF is done, its WebP renditions play, served on the CDN route
            gif = by_name["animated-loop-3.gif"]
            assert (gif["animated"], gif["frames"], gif["loop"]) == (True, 10, 3), gif
            webps = [r for r in gif["renditions"] if r["format"] == "webp"]
            assert len(webps) == 2 and all(r["animated"] for r in webps), gif
            for rendition in webps:
                body = client.get(rendition["url"]).content
                assert body[12:16] == b"VP8X" and body[20] & 0x02, rendition  # animation flag
            thumb = next(r for r in landscape["renditions"] if r["name"] == "thumb")
            response = client.get(thumb["url"])
            assert response.status_code == 200
            assert response.headers["cache-control"] == IMMUTABLE
            assert response.headers["accept-ranges"] == "bytes"
            assert len(response.content) == thumb["bytes"]
            etag = response.headers["etag"]
            assert etag.startswith('"') and len(etag) > 2
            not_modified = client.get(thumb["url"], headers={"If-None-Match": etag})
            assert not_modified.status_code == 304
            assert not_modified.headers["etag"] == etag
            assert not_modified.content == b""
            partial = client.get(thumb["url"], headers={"Range": "bytes=0-99"})
            assert partial.status_code == 206
            assert partial.headers["content-range"] == f"bytes 0-99/{thumb['bytes']}"
            assert partial.content == response.content[:100]

            # WHEN: one image is deleted through the API
            deleted = client.delete(
                f"{stack.api}/images/{landscape['id']}", headers={"x-api-key": stack.api_key}
            )
            assert deleted.status_code == 202, deleted.text
            deadline = time.monotonic() + 60
            record = landscape
            key = {"x-api-key": stack.api_key}
            while record["status"] != "deleted" and time.monotonic() < deadline:
                time.sleep(0.3)
                record = client.get(f"{stack.api}/images/{landscape['id']}", headers=key).json()
            # THEN: marked deleted, gone from the list, and its files are gone from the CDN
            # (the stand-in serves its cached copy until the processor's invalidation lands)
            assert record["status"] == "deleted"
            listed = client.get(f"{stack.api}/images", params={"limit": 200}).json()
            assert landscape["id"] not in {r["id"] for r in listed["data"]}
            while client.get(thumb["url"]).status_code != 404 and time.monotonic() < deadline:
                time.sleep(0.3)
            assert client.get(thumb["url"]).status_code == 404
    finally:
        code = stack.stop()

    # THEN: a clean stop, nothing left running, every port free again
    assert code == 0, stack.output
    assert "imgpipe local: stopped" in stack.output
    # multiprocessing's resource tracker exits when it sees the stack's end of its pipe close.
    deadline = time.monotonic() + 10
    while [pid for pid in pids if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids if alive(pid)}
    assert not left, f"still running after the stack stopped: {left}"
    for url in (stack.api, stack.cdn, stack.aws):
        host, port = url.removeprefix("http://").split(":")
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect((host, int(port)))
