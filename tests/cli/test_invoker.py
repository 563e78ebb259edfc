"""Execution environments: one process per concurrency slot, like Lambda's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.local.invoker import FunctionConfig, FunctionTimedOut, MemoryExceeded, ProcessInvoker
from processor.core.errors import InvocationFailed

pytestmark = pytest.mark.integration

EVENT = {"Records": [{"messageId": "m", "body": "{}"}]}


def invoker(handler: str, **kwargs: object) -> ProcessInvoker:
    return ProcessInvoker(FunctionConfig(handler=f"tests.cli.handlers.{handler}", **kwargs))  # type: ignore[arg-type]


def test_a_warm_process_serves_invocations_with_its_own_environment() -> None:
    env = invoker(
        "echo", function_name="fn", timeout_s=30, environment={"IMGPIPE_TEST_MARKER": "x"}
    )
    try:
        first, second = env.invoke(EVENT), env.invoke(EVENT)
    finally:
        env.close()
    assert first["pid"] == second["pid"] != os.getpid()  # warm: the same process
    assert first["records"] == 1
    assert first["function_name"] == "fn"
    assert 25_000 < first["remaining_ms"] <= 30_000
    assert first["request_id"] != second["request_id"]
    assert first["marker"] == "x"
    assert "IMGPIPE_TEST_MARKER" not in os.environ  # only the function's process has it
    assert env.pid is None  # closed


def test_an_exception_fails_the_invocation_and_keeps_the_process() -> None:
    env = invoker("boom")
    try:
        with pytest.raises(InvocationFailed, match="RuntimeError: boom"):
            env.invoke(EVENT)
        pid = env.pid
        with pytest.raises(InvocationFailed):
            env.invoke(EVENT)
        assert env.pid == pid
    finally:
        env.close()


def test_a_crash_fails_the_invocation_and_the_next_one_gets_a_fresh_process() -> None:
    env = invoker("crash")
    try:
        with pytest.raises(InvocationFailed, match="died"):
            env.invoke(EVENT)
        assert env.pid is None
        with pytest.raises(InvocationFailed, match="died"):
            env.invoke(EVENT)  # started again, and crashed again
    finally:
        env.close()


def test_an_invocation_past_the_timeout_is_stopped() -> None:
    env = invoker("slow", timeout_s=1)
    try:
        env.start()
        pid = env.pid
        assert pid is not None
        with pytest.raises(FunctionTimedOut, match="function's timeout of 1 s"):
            env.invoke(EVENT)
        assert env.pid is None
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    finally:
        env.close()


def test_an_invocation_past_the_memory_is_stopped_and_the_next_gets_a_fresh_process() -> None:
    # GIVEN a 200 MB function whose handler touches 400 MB
    env = invoker("hog", memory_mb=200, timeout_s=30)
    try:
        env.start()
        pid = env.pid
        # WHEN it is invoked THEN it is stopped as soon as it passes its memory, as Lambda does
        with pytest.raises(MemoryExceeded, match="of 200 MB"):
            env.invoke(EVENT)
        assert env.memory_kills == 1
        assert env.pid is None and pid is not None
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
        # the poll stops it within a few MB past the limit, never near what it wanted
        assert 200 * 2**20 < env.peak_rss_bytes < 300 * 2**20
    finally:
        env.close()


def test_the_function_memory_is_announced_as_on_lambda() -> None:
    env = invoker("memory", memory_mb=512)
    try:
        assert env.invoke(EVENT) == {"memory_mb": "512"}
        assert 0 < env.peak_rss_bytes < 512 * 2**20
    finally:
        env.close()


def test_a_handler_that_cannot_be_imported_fails_at_cold_start() -> None:
    env = ProcessInvoker(FunctionConfig(handler="tests.cli.no_such_module.handler"))
    with pytest.raises(InvocationFailed, match="cannot load"):
        env.start()
    assert env.pid is None


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
