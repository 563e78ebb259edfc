"""How many tries an image gets, and whether a try that ran out of time was starved. Pure.

**Starved or heavy.** A try stopped at its time budget (``timeout``) is final when the image
is heavy: its own work kept a CPU busy the whole time, and the same function would run out of
time again. It is not final when the process was starved of CPU (a loaded machine, a noisy
neighbour): then the image is tried once more, later and alone, before a timeout is final.

What tells them apart is the CPU time of the whole process (every thread) over the wall time
of the engine's work on the image. The image's work runs on libvips' own worker threads and on
the engine's encode pool, not on the thread that waits for it: that thread's clock would say
"starved" on an idle machine, while the process clock counts every thread the image used. It
also counts another image side by side and S3 transfers in flight, which can only make a
starved verdict rarer, so a heavy image is never retried because of it. While the engine works
it reads a local spool file and nothing else, so at least one of its threads can always run:
a process that is not starved gets at least one CPU, or the function's whole share when that
is less (Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB). Below
half of that, the image spent most of its time waiting for a CPU it was entitled to.

**Tries.** The record of an image still ``processing`` counts the invocations that took it up
(``take_up``); one that ends without trying puts its try back. A retry message carries the
tries it has had. So at the start of a try, tries counted on the record that neither this
delivery nor its message accounts for were stopped with their invocation (its timeout, or
its memory) before they could end.
"""

from __future__ import annotations

from processor.core.ports import Reading

# Lambda gives a function CPU in proportion to its memory: one whole vCPU at 1,769 MB, a
# second only above it.
ONE_VCPU_MB = 1769
# Below this share of the CPU it was entitled to, a try was starved.
STARVED_BELOW = 0.5
# Tries a starved timeout may have: the first, and one more, later and alone.
STARVED_TRIES = 2
# Tries stopped with their invocation after which the image is failed (``interrupted``)
# instead of tried again: below the queue's maxReceiveCount, so the record says so before
# the message would reach the dead-letter queue (tests/infra/test_wiring.py checks it).
MAX_INTERRUPTED = 2


def cpu_share(function_memory_mb: int | None) -> float:
    """The CPUs one image can count on: the function's share, at most one (an image's work
    may not keep two busy). Outside Lambda (no memory size): one."""
    if function_memory_mb is None:
        return 1.0
    return min(1.0, function_memory_mb / ONE_VCPU_MB)


def cpu_ratio(used: Reading) -> float:
    """CPUs the process used over the interval, on average (0 for an empty interval)."""
    return used.cpu / used.wall if used.wall > 0 else 0.0


def starved(used: Reading, share: float) -> bool:
    """Did the process get less than half the CPU it was entitled to while the engine
    worked? ``used``: the process's CPU and wall time over the engine's work on the image;
    ``share``: ``cpu_share`` of the function."""
    return used.wall > 0 and cpu_ratio(used) < STARVED_BELOW * share


def retry_starved(used: Reading, share: float, tries: int) -> bool:
    """A timeout on try number ``tries``: try it again (later, alone) rather than fail it."""
    return tries < STARVED_TRIES and starved(used, share)


def this_try(*, event_tries: int, counted: int | None) -> int:
    """The number of the try about to start. ``event_tries``: the tries its message says it
    had; ``counted``: the tries on a ``processing`` record, this one included (None when the
    record is past ``processing``, as for a new upload to a key already done: then only the
    message knows)."""
    return max(event_tries + 1, counted or 0)


def interrupted(*, event_tries: int, counted: int | None) -> int:
    """Tries stopped with their invocation: counted on the record, accounted for neither by
    the message (its earlier tries) nor by this delivery."""
    if counted is None:
        return 0
    return max(0, counted - event_tries - 1)
