"""A dependency-free progress line on stderr: a bar redrawn in place on a terminal; with
``every_s``, also a plain line that often when stderr is not one (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self,
        total: int,
        label: str = "",
        stream: TextIO | None = None,
        *,
        done: int = 0,
        every_s: float | None = None,
    ) -> None:
        self.total = total
        self.done = done  # already done before this run (a resumed one): not in the rate
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.every_s = every_s
        self._started = time.monotonic()
        self._first = done
        self._last_line = 0.0

    def rate(self) -> float:
        return (self.done - self._first) / max(time.monotonic() - self._started, 1e-6)

    def line(self, note: str = "", errors: int = 0) -> str:
        rate = self.rate()
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:,.0f}s" if rate > 0 else "?"
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * min(filled, width) + "-" * (width - min(filled, width))
        text = f"{self.label} [{bar}] {self.done}/{self.total} {rate:.1f}/s eta {eta}"
        if errors:
            text += f" errors {errors}"
        return f"{text} {note[:30]}".rstrip()

    def advance(self, n: int = 1, note: str = "", errors: int = 0) -> None:
        self.done += n
        if self.enabled:
            self.stream.write(f"\r{self.line(note, errors):<100}")
            self.stream.flush()
        elif self.every_s is not None and time.monotonic() - self._last_line >= self.every_s:
            self._last_line = time.monotonic()
            self.stream.write(self.line(note, errors) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
