"""The process's heap between steps: what glibc keeps after a step frees its memory.

glibc's malloc keeps freed memory in its arenas rather than giving it back, and a thread
allocates from its own arena: the score step's arrays, made on another thread after the
encoders freed theirs, came on top of them (a 6000x6000 RGBA WebP peaked 215-263 MB above
the warm engine with scores against 155-168 MB without). ``give_back`` returns the free
pages first (``malloc_trim``), and the engine scores on an encode thread, whose arena the
encoders' memory was freed into: then the scores add little to the peak (149-244 MB on the
same WebP, over repeated runs). A C library without ``malloc_trim`` (musl, macOS) is left as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def give_back() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
