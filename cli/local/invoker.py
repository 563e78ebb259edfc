"""Invoke a Lambda handler the way Lambda does: each concurrent invocation in its own process.

Lambda runs concurrent invocations in separate execution environments, and handlers are
written for that: module-level state (Powertools' batch processor, logger keys, metrics) is
per process and one invocation runs at a time. ``ProcessInvoker`` keeps that true locally:
one child process per concurrency slot, started with ``spawn`` (never fork a process that
runs threads), reused while warm like a Lambda container. Like Lambda, it stops an
invocation that runs past the function's timeout or whose process grows past the function's
memory (its resident set, read from /proc every few milliseconds, as Lambda's cgroup counts
it), and a crash (a native library dying on a hostile image) fails only that batch: the next
invocation gets a fresh process. Either way the batch's messages come back after the queue's
visibility timeout, as on Lambda.

``InProcessInvoker`` calls a function directly, for handlers that are safe to share.
"""

from __future__ import annotations

import importlib
import io
import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol, TextIO

from cli.local.context import LambdaContext
from processor.core.errors import InvocationFailed

log = logging.getLogger(__name__)


class MemoryExceeded(InvocationFailed):
    """The execution environment grew past the function's memory and was stopped."""

    code = "memory_exceeded"


class FunctionTimedOut(InvocationFailed):
    """The invocation ran past the function's timeout and was stopped, as Lambda does."""

    code = "function_timeout"


_PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1024 * 1024


def resident_bytes(pid: int) -> int | None:
    """A process's resident set (bytes), or None once it has gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def peak_resident_bytes(pid: int) -> int | None:
    """A process's peak resident set so far (VmHWM), or None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return None
    return None


@dataclass(frozen=True)
class FunctionConfig:
    """The function being invoked: its handler and the configuration Lambda would give it."""

    handler: str  # "module.attribute", e.g. "processor.entrypoints.handler.lambda_handler"
    function_name: str = "imgpipe-processor"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-processor"
    timeout_s: float = 60.0
    memory_mb: int = 1024
    # The function's environment, applied in its process before the handler is imported.
    environment: dict[str, str] = field(default_factory=dict)

    def context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.function_name,
            invoked_function_arn=self.invoked_function_arn,
            timeout_s=self.timeout_s,
            memory_limit_in_mb=self.memory_mb,
        )


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's response; InvocationFailed when the invocation failed as a whole."""
        ...

    def close(self) -> None: ...


def load_handler(path: str) -> Callable[[dict[str, Any], Any], Any]:
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(f"a handler is 'module.function', got {path!r}")
    handler: Callable[[dict[str, Any], Any], Any] = getattr(
        importlib.import_module(module_name), attribute
    )
    return handler


class InProcessInvoker:
    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], spec: FunctionConfig) -> None:
        self._handler = handler
        self._spec = spec

    def invoke(self, event: dict[str, Any]) -> Any:
        try:
            return self._handler(event, self._spec.context())
        except Exception as e:
            raise InvocationFailed(f"{type(e).__name__}: {e}") from e

    def close(self) -> None:
        pass


# --- the child process ----------------------------------------------------------------------


class _DropMetricLines(io.TextIOBase):
    """stdout without CloudWatch EMF lines (``{"_aws": ...}``).

    With POWERTOOLS_METRICS_DISABLED Powertools still prints its cold-start and single metrics;
    locally nothing reads them, and they bury the log lines people do read.
    """

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._line = ""

    def write(self, text: str) -> int:
        self._line += text
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            if not line.startswith('{"_aws":'):
                self._target.write(line + "\n")
        self._target.flush()
        return len(text)

    def flush(self) -> None:
        self._target.flush()


def _child_main(conn: Connection, spec_fields: dict[str, Any]) -> None:
    """An execution environment: load the handler once (the cold start), then serve events."""
    # Ctrl-C reaches every process of the terminal's group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = FunctionConfig(**spec_fields)
    os.environ.update(spec.environment)  # this process is the function's environment
    # What Lambda's runtime sets in every function (the processor sizes images by the first).
    os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(spec.memory_mb)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = spec.function_name
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        sys.stdout = _DropMetricLines(sys.stdout)
        # "No application metrics to publish": a warning per invocation that has none.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"aws_lambda_powertools")
    try:
        handler = load_handler(spec.handler)
        conn.send(("ready", None))
    except BaseException as e:  # report a broken import instead of dying silently
        conn.send(("init_error", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            event = conn.recv()
        except (EOFError, OSError):
            return  # the parent has gone: nothing left to serve
        if event is None:
            return
        try:
            conn.send(("ok", handler(event, spec.context())))
        except Exception as e:
            logging.getLogger(spec.function_name).exception("invocation failed")
            conn.send(("error", f"{type(e).__name__}: {e}"))


class ProcessInvoker:
    """One warm child process; started on first use, replaced after a crash, a timeout or
    running out of memory."""

    # Seconds allowed for a cold start (imports: boto3, pyvips, Powertools) beyond the timeout.
    INIT_TIMEOUT_S = 60.0
    # How often the child's memory is read while it works: RSS grows by tens of MB in 10 ms
    # at most (a decoder writing pixels), so the overshoot before a stop stays small.
    MEMORY_POLL_S = 0.01

    def __init__(self, spec: FunctionConfig) -> None:
        self._spec = spec
        self._ctx = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        # Peak resident set of any of its processes so far, bytes (VmHWM, read at each end).
        self.peak_rss_bytes = 0
        self.memory_kills = 0  # invocations stopped for exceeding the function's memory

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def memory_limit_bytes(self) -> int:
        return self._spec.memory_mb * MiB

    def start(self) -> None:
        """Start the process and wait for its cold start (safe to call when already warm)."""
        if self._process is not None and self._process.is_alive():
            return
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_child_main,
            args=(child, asdict(self._spec)),
            name=f"{self._spec.function_name}-env",
            daemon=True,  # never outlive the stack, even if it exits without close()
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not self._wait(parent, self.INIT_TIMEOUT_S):
            self._kill()
            raise InvocationFailed(f"{self._spec.handler}: no cold start within the time limit")
        try:
            status, detail = parent.recv()
        except (EOFError, OSError) as e:
            self._kill()
            raise InvocationFailed("the execution environment died during its cold start") from e
        if status != "ready":
            self._kill()
            raise InvocationFailed(f"cannot load {self._spec.handler}: {detail}")

    def invoke(self, event: dict[str, Any]) -> Any:
        self.start()
        conn = self._conn
        assert conn is not None
        try:
            conn.send(event)
            # A little slack over the function timeout for pickling the response.
            if not self._wait(conn, self._spec.timeout_s + 1.0):
                self._kill()
                raise FunctionTimedOut(
                    f"stopped at the function's timeout of {self._spec.timeout_s:g} s"
                )
            status, payload = conn.recv()
        except (EOFError, OSError, BrokenPipeError) as e:
            code = self._process.exitcode if self._process is not None else None
            self._kill()
            raise InvocationFailed(f"the execution environment died (exit code {code})") from e
        finally:
            self._note_peak()
        if status != "ok":
            raise InvocationFailed(str(payload))
        return payload

    def _wait(self, conn: Connection, timeout_s: float) -> bool:
        """True when ``conn`` has data within ``timeout_s``; stops the process (and raises
        MemoryExceeded) as soon as its resident set passes the function's memory."""
        deadline = time.monotonic() + timeout_s
        pid = self.pid
        limit = self.memory_limit_bytes
        while True:
            left = deadline - time.monotonic()
            if conn.poll(max(0.0, min(left, self.MEMORY_POLL_S))):
                return True
            rss = resident_bytes(pid) if pid is not None else None
            if rss is not None and rss > limit:
                self._note_peak()
                self.memory_kills += 1
                self._kill()
                raise MemoryExceeded(
                    f"exceeded the function's memory ({rss / MiB:,.0f} MB used of "
                    f"{self._spec.memory_mb} MB) and was stopped"
                )
            if left <= 0:
                return False

    def _note_peak(self) -> None:
        pid = self.pid
        peak = peak_resident_bytes(pid) if pid is not None else None
        if peak is not None:
            self.peak_rss_bytes = max(self.peak_rss_bytes, peak)

    def close(self, timeout_s: float = 10.0) -> None:
        process, conn = self._process, self._conn
        if process is None:
            return
        try:
            if conn is not None:
                conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        process.join(timeout_s)
        self._kill()

    def _kill(self) -> None:
        self._note_peak()
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        if conn is not None:
            conn.close()
        if process is None:
            return
        if process.is_alive():
            process.terminate()
            process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join(5.0)
        process.close()
