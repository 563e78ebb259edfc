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
from processor.core.record import ImageFacts, RenditionInfo


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

    b"BAD..." -> CorruptImage, b"HUGE..." -> TooManyPixels, b"SLOW..." -> TimeBudgetExceeded,
    b"" -> EmptyImage; anything else gives one small output per (rendition, format).
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.processed: list[str] = []  # image ids, in order: how many decodes happened
        self.budgets: list[float | None] = []  # the time budget each process() was given
        self.before_process: Any = None  # a callable run first (tests use it to interleave)
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
        if data.startswith(b"SLOW"):
            raise TimeBudgetExceeded("stopped while decoding: over its time budget")
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
