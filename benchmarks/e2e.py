"""End to end on the local stack: ``imgpipe local`` as a subprocess, N uploads to all done.

Uploads go straight to the embedded S3's ``raw/`` prefix (as a client with a presigned POST
would), so the path measured is the product's: S3 event -> queue -> processor -> renditions
in S3 -> record in DynamoDB. Each input is uploaded once under its own key: identical bytes
would be deduplicated by the service and measure nothing.

``overlap`` measures the handler's images in flight (IMGPIPE_IMAGES_AT_ONCE): one execution
environment (a 2048 MB function: two vCPUs on Lambda), the same uploads with one image at a
time and with two, alternating, as a ratio of batch wall times measured in the same run.

Skipped, with the reason, when ``imgpipe local`` does not exist or does not start; the rest of
the harness never depends on it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.corpus import REPO, Input

log = logging.getLogger(__name__)

# "  bucket     imgpipe-...": two spaces, a label, two or more spaces, the value.
_BANNER = re.compile(r"^  (api|aws|bucket|table|queue)\s{2,}(\S+)")
_STAGES = {
    "s3_read": "S3 read (streamed to a temp file, hashed)",
    "decode": "decode (one shrink-on-load decode)",
    "encode": "encode (every rendition and format, concurrent)",
    "s3_write": "S3 writes (renditions, in parallel)",
}
_FINAL = {"done", "failed"}


def available() -> str | None:
    """None when `imgpipe local` can run here, else why not."""
    if importlib.util.find_spec("cli.commands.local") is None:
        return "`imgpipe local` does not exist yet (cli/commands/local.py)"
    return None


class Stack:
    """``imgpipe local`` on free loopback ports, stopped with SIGINT (as Ctrl-C would)."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        timeout: float = 180,
        options: tuple[str, ...] = (),
    ):
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "local",
                "--api-port",
                "0",
                "--cdn-port",
                "0",
                "--aws-port",
                "0",
                *options,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=REPO,
            env=dict(env),
            text=True,
        )
        self.info: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if m := _BANNER.match(line):
                self.info[m.group(1)] = m.group(2)
            if line.strip() == "ready":
                break
            if time.monotonic() > deadline:
                break
        if not {"aws", "bucket", "table"} <= set(self.info):
            self.stop()
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError("`imgpipe local` did not start: " + " / ".join(tail))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def run(
    inputs: list[Input],
    count: int,
    logs: Path,
    env: Mapping[str, str],
    timeout: float = 300,
) -> dict[str, Any]:
    """Upload ``count`` distinct inputs, wait until each record is done or failed.

    Where the time goes comes from the processor's own per-stage timings on each record.
    """
    reason = available()
    if reason is not None:
        log.info("end to end skipped: %s", reason)
        return {"skipped": reason}
    chosen = [i for i in inputs if i.kind != "large"][:count]
    return _on_a_stack(env, logs / "local-stack.log", chosen, timeout)


def _on_a_stack(
    env: Mapping[str, str],
    log_path: Path,
    chosen: list[Input],
    timeout: float,
    options: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``_measure`` on a stack of its own; {"skipped": why} when it does not start or fails."""
    try:
        stack = Stack(env, log_path, options=options)
    except (RuntimeError, OSError) as e:
        log.warning("end to end skipped: %s", e)
        return {"skipped": str(e)}
    try:
        return _measure(stack, chosen, timeout)
    except Exception as e:  # a broken stack must not sink the other results
        log.warning("end to end failed: %s", e)
        return {"skipped": f"the run failed: {type(e).__name__}: {e}"[:300]}
    finally:
        stack.stop()


def overlap(
    inputs: list[Input],
    count: int,
    logs: Path,
    env: Mapping[str, str],
    rounds: int = 2,
    timeout: float = 300,
) -> dict[str, Any]:
    """Batch wall time with two images in flight against one at a time, same uploads.

    Rounds alternate the order (1, 2, then 2, 1) so drift on a shared machine falls
    on both sides.
    """
    reason = available()
    if reason is not None:
        return {"skipped": reason}
    # Photos first (an image's largest encode dominates them), then the rest of the corpus:
    # distinct bytes each, since identical ones would be deduplicated.
    ordinary = [i for i in inputs if i.kind != "large"]
    chosen = sorted(ordinary, key=lambda i: not i.photo)[:count]
    walls: dict[int, list[float]] = {1: [], 2: []}
    for n in range(rounds):
        for at_once in (1, 2) if n % 2 == 0 else (2, 1):
            measured = _on_a_stack(
                {**env, "IMGPIPE_IMAGES_AT_ONCE": str(at_once)},
                logs / f"local-stack-overlap-{at_once}-{n}.log",
                chosen,
                timeout,
                options=("--concurrency", "1", "--function-memory", "2048"),
            )
            if "skipped" in measured:
                return measured
            if measured["done"] + measured["failed"] != len(chosen):
                return {"skipped": f"{measured['unfinished']} uploads unfinished"}
            walls[at_once].append(measured["wall_s"])
    one, two = sum(walls[1]), sum(walls[2])
    return {
        "images": len(chosen),
        "photos": sum(i.photo for i in chosen),
        "rounds": rounds,
        "wall_s_one_at_a_time": walls[1],
        "wall_s_two_at_once": walls[2],
        "ratio": two / one if one else None,
    }


def _measure(stack: Stack, chosen: list[Input], timeout: float) -> dict[str, Any]:
    import boto3

    from processor.core.keys import image_id

    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name="us-east-1",
    )
    endpoint, bucket, table = stack.info["aws"], stack.info["bucket"], stack.info["table"]
    s3 = session.client("s3", endpoint_url=endpoint)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    run_tag = f"{os.getpid()}-{int(time.time())}"
    keys = {f"raw/bench/{run_tag}/{n:03d}-{i.name}": i for n, i in enumerate(chosen)}
    ids = {image_id(bucket, key): key for key in keys}

    log.info("end to end: %d uploads to %s", len(keys), endpoint)
    t0 = time.perf_counter()
    # All at once, as many clients would: the queue's batching window then fills whole batches.
    with ThreadPoolExecutor(max_workers=8) as uploads:
        list(
            uploads.map(
                lambda item: s3.upload_file(str(item[1].path), bucket, item[0]), keys.items()
            )
        )
    uploaded = time.perf_counter() - t0
    records: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(records) < len(ids) and time.monotonic() < deadline:
        pending = [i for i in ids if i not in records]
        for start in range(0, len(pending), 100):
            got = dynamodb.batch_get_item(
                RequestItems={
                    table: {"Keys": [{"id": {"S": i}} for i in pending[start : start + 100]]}
                }
            )
            for item in got["Responses"].get(table, []):
                if item.get("status", {}).get("S") in _FINAL:
                    records[item["id"]["S"]] = item
        if len(records) < len(ids):
            time.sleep(0.1)
    wall = time.perf_counter() - t0

    done = [r for r in records.values() if r["status"]["S"] == "done"]
    processing = [float(r["processing_ms"]["N"]) for r in done if "processing_ms" in r]
    stages: dict[str, float] = {}
    if processing:
        stages["processing_ms (processor's own: S3 read .. renditions written)"] = (
            statistics.median(processing)
        )
    # The processor's own per-stage timings, stored on each record (a DynamoDB map).
    for stage, label in _STAGES.items():
        values = [
            float(r["timings"]["M"][stage]["N"])
            for r in done
            if stage in r.get("timings", {}).get("M", {})
        ]
        if values:
            stages[label] = statistics.median(values)
    return {
        "images": len(ids),
        "done": len(done),
        "failed": len(records) - len(done),
        "unfinished": len(ids) - len(records),
        "upload_s": uploaded,
        "wall_s": wall,
        "images_per_s": len(records) / wall if wall else None,
        "stages_ms": stages,
    }
