"""The clocks the service reads around the engine's work: wall time and the process's CPU.

``time.process_time`` is CLOCK_PROCESS_CPUTIME_ID: the CPU of every thread of the process,
libvips' own worker threads and the engine's encode pool included, which is where an image's
work runs (processor/rules/tries.py says why that, and not the waiting thread's clock).
"""

from __future__ import annotations

import time

from processor.core.ports import Reading


class ProcessClocks:
    def read(self) -> Reading:
        return Reading(wall=time.perf_counter(), cpu=time.process_time())
