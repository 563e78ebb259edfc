"""The engine gives freed heap memory back before scoring (processor/imaging/heap.py)."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import pytest

from processor.imaging import heap

pytestmark = pytest.mark.integration


def _rss_kb() -> int:
    lines = Path("/proc/self/status").read_text(encoding="ascii").splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))


@pytest.mark.skipif(ctypes.util.find_library("c") != "libc.so.6", reason="glibc's malloc_trim")
def test_freed_memory_goes_back_to_the_system() -> None:
    # GIVEN 200 MB freed in small blocks (below glibc's mmap threshold, so in the heap) under
    # a block still in use (so free() alone cannot shrink the heap from its top)
    blocks = [bytearray(64 * 1024) for _ in range(3200)]
    kept = bytearray(64 * 1024)
    del blocks
    held = _rss_kb()
    # WHEN the engine gives the free pages back
    assert heap.give_back() is True
    # THEN the process is smaller by most of them
    assert held - _rss_kb() > 150 * 1024, (held, _rss_kb())
    assert kept
