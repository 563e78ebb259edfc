"""An in-memory fake of the engine port (processor/core/ports.py ``ImageEngine``): the
service's tests need no libvips. The bytes decide the answer, as a real image's would."""

from __future__ import annotations

import hashlib
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from processor.core.config import EngineConfig
from processor.core.errors import (
    CorruptImage,
    EmptyImage,
    ImageTooLarge,
    TimeBudgetExceeded,
    TooManyPixels,
)
from processor.core.keys import CONTENT_TYPES, content_version, rendition_key
from processor.core.ports import Reading
from processor.core.record import ImageFacts, RenditionInfo


class FakeClocks:
    """Clocks (processor/core/ports.py) that move only when told: the fake engine advances
    them as a real image's work would, so starvation is decided without a real clock."""

    def __init__(self) -> None:
        self.wall = 1000.0
        self.cpu = 10.0

    def read(self) -> Reading:
        return Reading(wall=self.wall, cpu=self.cpu)

    def advance(self, wall_s: float, cpu_s: float) -> None:
        self.wall += wall_s
        self.cpu += cpu_s


class FakeSpooled:
    def __init__(self, path: Path, sha256: str, size: int) -> None:
        self.path, self.sha256, self.size = path, sha256, size

    def __enter__(self) -> FakeSpooled:
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class FakeOutput:
    info: RenditionInfo
    data: bytes


@dataclass(frozen=True)
class FakeResult:
    facts: ImageFacts
    outputs: list[FakeOutput]
    content_version: str | None
    config_version: str
    timings: dict[str, float]


class FakeEngine:
    """Same API as processor.imaging.engine.Engine. Content decides the answer:

    b"BAD..." -> CorruptImage, b"HUGE..." -> TooManyPixels, b"" -> EmptyImage;
    b"SLOW..." -> TimeBudgetExceeded after a budget of work that kept a CPU busy (heavy);
    b"STARVED..." -> TimeBudgetExceeded after a budget in which the process got
    ``starved_cpu`` (a tenth) of a CPU, on every try; b"STARVED ONCE..." only on the first
    try of those bytes; anything else gives one small output per (rendition, format).
    ``clocks`` move as the work would move them: hand them to the service.
    """

    BUDGET_S = 30.0  # what a timed-out try took when no budget is given

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.processed: list[str] = []  # image ids, in order: how many decodes happened
        self.budgets: list[float | None] = []  # the time budget each process() was given
        self.before_process: Any = None  # a callable run first (tests use it to interleave)
        self.clocks = FakeClocks()
        self.starved_cpu = 0.1  # CPUs a starved try gets, on average
        self._runs: list[tuple[str, str]] = []  # (image id, sha256) of every process()
        self._lock = threading.Lock()

    def spool(self, source: IO[bytes]) -> FakeSpooled:
        digest, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(prefix="fake-", delete=False) as out:
            while chunk := source.read(65536):
                size += len(chunk)
                if size > self.config.limits.max_input_bytes:
                    Path(out.name).unlink()
                    raise ImageTooLarge("too many bytes")
                digest.update(chunk)
                out.write(chunk)
        return FakeSpooled(Path(out.name), digest.hexdigest(), size)

    def process(
        self,
        source: Any,
        *,
        image_id: str,
        versioned: bool = False,
        source_name: str | None = None,
        time_budget_s: float | None = None,
    ) -> FakeResult:
        if self.before_process is not None:
            self.before_process()
        data = source.path.read_bytes()
        with self._lock:
            self.processed.append(image_id)
            self.budgets.append(time_budget_s)
        budget = time_budget_s or self.BUDGET_S
        with self._lock:
            self._runs.append((image_id, source.sha256))
            tries = self._runs.count((image_id, source.sha256))
        if data.startswith(b"SLOW"):
            self.clocks.advance(budget, budget * 1.5)  # libvips keeps more than one core busy
            raise TimeBudgetExceeded("stopped while decoding: over its time budget")
        if data.startswith(b"STARVED") and (tries == 1 or not data.startswith(b"STARVED ONCE")):
            self.clocks.advance(budget, budget * self.starved_cpu)
            raise TimeBudgetExceeded("stopped while decoding: over its time budget")
        self.clocks.advance(0.05, 0.06)
        if not data:
            raise EmptyImage("the upload is empty (0 bytes)")
        if data.startswith(b"BAD"):
            raise CorruptImage("the image data is damaged or truncated")
        if data.startswith(b"HUGE"):
            raise TooManyPixels("65536 x 65536 is more pixels than allowed")
        version = content_version(source.sha256, self.config.version) if versioned else None
        outputs = []
        for spec in self.config.renditions:
            for fmt in spec.formats:
                blob = f"{fmt}:{spec.name}:{source.sha256[:12]}".encode()
                outputs.append(
                    FakeOutput(
                        RenditionInfo(
                            name=spec.name,
                            key=rendition_key(spec.folder, image_id, fmt, version),
                            format=fmt,
                            content_type=CONTENT_TYPES[fmt],
                            width=min(spec.width, 100),
                            height=min(spec.height, 80),
                            bytes=len(blob),
                        ),
                        blob,
                    )
                )
        facts = ImageFacts(
            sha256=source.sha256, input_bytes=source.size, format="jpeg", width=100, height=80
        )
        return FakeResult(facts, outputs, version, self.config.version, {"total": 1.0})
