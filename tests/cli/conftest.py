"""Ground of the local stack's tests: moto over HTTP, and `imgpipe local` as a subprocess.

Every server binds 127.0.0.1 on a free port and is stopped in a finally block.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
IMGPIPE = ROOT / ".venv" / "bin" / "imgpipe"
# "  api key    imgpipe-local-...": a label, two or more spaces, the value.
_BANNER = re.compile(r"^  (\S.*?)\s{2,}(\S+)")
_LABELS = {
    "api": "api",
    "cdn": "cdn",
    "aws": "aws",
    "bucket": "bucket",
    "table": "table",
    "api key": "api_key",
}


@contextmanager
def in_process_stack(prefix: str, api_key: str, **options: Any) -> Iterator[Any]:
    """A LocalStack in this process on free ports, one processor environment, its own names;
    ``options``: other StackOptions."""
    import uuid

    from cli.local.stack import LocalStack, StackOptions

    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            mp.setenv(name, "testing")
        stack_options = StackOptions(
            api_port=0,
            cdn_port=0,
            aws_port=0,
            api_key=api_key,
            concurrency=1,
            stack_name=f"{prefix}-{uuid.uuid4().hex[:8]}",
            **options,
        )
        started = LocalStack(stack_options)
        try:
            started.start()
            yield started
        finally:
            started.stop()


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials before any client exists: nothing may reach for real ones."""
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_endpoint(fake_aws: None) -> Iterator[str]:
    """The local stack's own embedded AWS (moto's server, with its S3 fixes) on a free port."""
    from cli.local.aws import EmbeddedAws

    server = EmbeddedAws("127.0.0.1", 0)
    try:
        yield server.start()
    finally:
        server.stop()


def aws_client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}),
    )


def queue_count(sqs: Any, url: str) -> int:
    """Messages in a queue, visible or in flight."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_final(
    dynamodb: Any, table: str, ids: dict[str, str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """name -> the stored record (plain values) once it is done or failed."""
    from processor.aws.dynamo import DynamoImageRepository

    repo = DynamoImageRepository(dynamodb, table)
    final: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(final) < len(ids) and time.monotonic() < deadline:
        for name, iid in ids.items():
            record = repo.get(iid)
            final_state = record is not None and record.status.value in ("done", "failed")
            if name not in final and record is not None and final_state:
                final[name] = record.model_dump(mode="json")
        time.sleep(0.3)
    missing = sorted(set(ids) - set(final))
    assert not missing, f"not final after {timeout_s} s: {missing}"
    return final


def children_of(pid: int) -> set[int]:
    """Direct children of a process, from /proc (the processor's execution environments)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class StackProcess:
    """`imgpipe local` on free ports; its output is drained (and kept) by a thread."""

    process: subprocess.Popen[str]
    api: str = ""
    cdn: str = ""
    aws: str = ""
    bucket: str = ""
    table: str = ""
    api_key: str = ""
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, *args: str, timeout_s: float = 90.0) -> StackProcess:
        env = {**os.environ, **FAKE_AWS, "MALLOC_ARENA_MAX": "2", "PYTHONUNBUFFERED": "1"}
        env.pop("IMGPIPE_API_KEY", None)
        process = subprocess.Popen(
            [str(IMGPIPE), "local", "--api-port", "0", "--cdn-port", "0", "--aws-port", "0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a Ctrl-C in the test run must not reach it directly
        )
        stack = cls(process)
        threading.Thread(target=stack._drain, daemon=True).start()
        try:
            stack._wait_ready(timeout_s)
        except BaseException:
            stack.stop()
            raise
        return stack

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no 'ready' in {timeout_s} s:\n{self.output}") from None
            if line is None:
                raise AssertionError(f"imgpipe local exited while starting:\n{self.output}")
            match = _BANNER.match(line)
            if match and match.group(1) in _LABELS:
                setattr(self, _LABELS[match.group(1)], match.group(2))
            if line.strip() == "ready":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no 'ready' in {timeout_s} s:\n{self.output}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-200:])

    def stop(self, timeout_s: float = 45.0) -> int:
        """SIGTERM, then SIGKILL to the whole group if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
                raise AssertionError(f"imgpipe local ignored SIGTERM:\n{self.output}") from None
        return self.process.returncode


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    """One started `imgpipe local` (one execution environment) for a whole test module."""
    started = StackProcess.start("--concurrency", "1")
    try:
        yield started
    finally:
        assert started.stop() == 0, started.output
