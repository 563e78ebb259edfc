"""The engine: the only code that decodes and encodes pixels, as a list of named steps.

    spool -> sniff -> probe -> plan -> decode -> derive -> describe -> encode -> score

each a small module of this package (spool.py ... encode.py); ``Engine.process`` reads as
that list, and the time budget is checked between the steps (and inside libvips while they
compute). The plan is pure (processor/rules/): limits, sizes, formats and what happens to an
animation are decided from the header, before any pixel.

libvips releases the GIL, so the encodes run in parallel threads and use both cores of a
Lambda even for a single image; the largest rendition's encodes start first, while the
smaller renditions are derived.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyvips

from processor.core.config import EngineConfig, RenditionSpec
from processor.core.errors import ImageRejected
from processor.core.keys import CONTENT_TYPES, content_version, rendition_key
from processor.core.record import ImageFacts, RenditionInfo
from processor.imaging import blank, heap, vips
from processor.imaging.budget import TimeBudget
from processor.imaging.decode import decode
from processor.imaging.derive import derive
from processor.imaging.describe import describe, facts
from processor.imaging.encode import Encoded, check_savers, encode
from processor.imaging.pixels import Frames, Held, Pixels
from processor.imaging.plan import plan
from processor.imaging.probe import probe
from processor.imaging.score import score
from processor.imaging.sniff import sniff
from processor.imaging.spool import Spooled, spool
from processor.rules.plan import Encode, Plan, RenditionPlan

log = logging.getLogger(__name__)

# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    info: RenditionInfo
    data: bytes
    trials: int = 0  # trial encodes of an ``auto`` rendition's quality search


@dataclass(frozen=True)
class Result:
    image_id: str
    facts: ImageFacts
    outputs: list[Output]
    config_version: str
    content_version: str | None
    # Milliseconds: read (spool + hash), decode (one decode to the largest rendition),
    # encode (smaller renditions, placeholder and every encode, overlapped), score (decoding
    # and scoring each still rendition), total.
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """One rendition made alone (``Engine.render``)."""

    format: str  # the encoder table's name of what ``data`` holds
    width: int
    height: int
    animated: bool
    data: bytes


# --- the steps that run side by side: derive and encode --------------------------------------


class Encodes:
    """The encode step, fed as the derive step makes each rendition's pixels: an encode
    starts as soon as its pixels exist, and renditions that came out the same (a small
    image's sizes, shared pixels) are encoded once."""

    def __init__(self, pool: ThreadPoolExecutor, budget: TimeBudget) -> None:
        self._pool = pool
        self._budget = budget
        self._futures: dict[tuple[int, Encode], Future[Encoded]] = {}
        self.jobs: list[tuple[RenditionPlan, Pixels, Encode]] = []

    def submit(self, r: RenditionPlan, pixels: Pixels, enc: Encode) -> None:
        self.jobs.append((r, pixels, enc))
        key = (id(pixels), enc)
        if key not in self._futures:
            self._futures[key] = self._pool.submit(encode, pixels, enc, self._budget)

    def results(self) -> list[Encoded]:
        return [self._futures[(id(pixels), enc)].result() for _, pixels, enc in self.jobs]

    def cancel(self) -> None:
        for future in self._futures.values():
            future.cancel()  # what has not started yet would only run out of time again

    @contextmanager
    def failing(self, spooled: Spooled, fmt: str, doing: str) -> Iterator[None]:
        """What stops the encodes (a libvips error, the time budget) cancels those not
        started; a libvips error becomes the project's, saying what was being done."""
        try:
            yield
        except pyvips.Error as e:
            self.cancel()
            raise vips.failure(e, self._budget, doing, spooled, fmt) from e
        except ImageRejected:  # the time budget's kill, a blank decode
            self.cancel()
            raise


def derive_all(
    decoded: Pixels,
    plan: Plan,
    budget: TimeBudget,
    then: Callable[[RenditionPlan, Pixels, Encode], None],
) -> Held:
    """Every rendition's pixels, largest first, each handed to ``then`` with its encodes as
    soon as it exists; returns the smallest still (what ``describe`` reads)."""
    still = decoded.still() if isinstance(decoded, Frames) else decoded
    smallest = still
    for r in sorted(plan.renditions, key=lambda r: -(r.width * r.height)):
        moving = [e for e in r.encodes if e.animated]
        if moving and isinstance(decoded, Frames):
            frames = derive(decoded, r, budget)
            for enc in moving:
                then(r, frames, enc)
        stills = [e for e in r.encodes if not e.animated]
        held = derive(still, r, budget)
        assert isinstance(held, Held)
        for enc in stills:
            then(r, held, enc)
        smallest = held
    return smallest


# --- the engine ------------------------------------------------------------------------------


class Engine:
    """Built once per process (Lambda container, CLI run); ``process`` is thread-safe."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        cache_max: int = 0,
        encode_workers: int | None = None,
        tmp_dir: str | None = None,
    ) -> None:
        check_savers()  # a format without its save function stops here, not on an image
        vips.init_vips(cache_max)
        self.config = config
        self.tmp_dir = tmp_dir
        self._pool = ThreadPoolExecutor(
            max_workers=encode_workers or max(2, os.cpu_count() or 2),
            thread_name_prefix="imgpipe-encode",
        )

    def _budget(self, time_budget_s: float | None) -> TimeBudget:
        """The smaller of the configured budget and the caller's."""
        budgets = [b for b in (self.config.limits.max_seconds, time_budget_s) if b is not None]
        return TimeBudget(min(budgets, default=None))

    def _score(self, pixels: Pixels, fmt: str, data: bytes, budget: TimeBudget) -> float | None:
        """A rendition's score, or None: a score is a report on a made rendition, so libvips
        failing on it (a decoder's refusal) or memory running short leaves the score null, not
        the image failed."""
        try:
            return score(pixels, fmt, data, self.config.scoring, budget)
        except (pyvips.Error, MemoryError) as e:
            log.warning("rendition not scored", extra={"format": fmt, "error": str(e)[:200]})
            return None

    def spool(self, source: str | Path | IO[bytes]) -> Spooled:
        return spool(source, self.config.limits.max_input_bytes, self.tmp_dir)

    def process(
        self,
        source: str | Path | IO[bytes] | Spooled,
        *,
        image_id: str,
        versioned: bool = False,
        source_name: str | None = None,  # noqa: ARG002 - reserved for log context
        time_budget_s: float | None = None,
    ) -> Result:
        """``time_budget_s``: this image's budget when the caller has less time than the
        configured one (``limits.max_seconds``); the smaller of the two applies."""
        started = time.perf_counter()
        budget = self._budget(time_budget_s)
        if isinstance(source, Spooled):
            return self._process(source, image_id, versioned, started, budget)
        with self.spool(source) as spooled:
            return self._process(spooled, image_id, versioned, started, budget)

    def render(
        self,
        source: str | Path | IO[bytes],
        spec: RenditionSpec,
        *,
        time_budget_s: float | None = None,
    ) -> Rendered:
        """One rendition, as ``process`` makes each of its own (the same steps, limits and
        budget, the configured poster frame), without the facts and placeholder: a size made
        on demand (processor/service/ondemand.py) from the original or a larger rendition."""
        config = self.config.model_copy(update={"renditions": (spec,)})
        budget = self._budget(time_budget_s)
        with self.spool(source) as spooled:
            fmt = sniff(spooled)
            header, _ = probe(spooled, fmt, config.limits.max_frames, config.limits)
            planned = plan(header, config)
            decoded = decode(spooled, planned, header, budget)
            encodes = Encodes(self._pool, budget)
            with encodes.failing(spooled, header.format, "making the rendition"):
                made = derive_all(decoded, planned, budget, then=encodes.submit)
                blank.check(made.image, spooled, header.format, header.width * header.height)
                blobs = encodes.results()
        # An animated source makes a moving and a still encode of the same format: keep the
        # moving one, as the eager WebP rendition of an animation is.
        (_, pixels, enc), blob = max(
            zip(encodes.jobs, blobs, strict=True), key=lambda job: job[1].animated
        )
        return Rendered(
            format=enc.format,
            width=pixels.size[0],
            height=pixels.size[1],
            animated=blob.animated,
            data=blob.data,
        )

    def _process(
        self, spooled: Spooled, image_id: str, versioned: bool, started: float, budget: TimeBudget
    ) -> Result:
        t_read = time.perf_counter()
        fmt = sniff(spooled)
        limits = self.config.limits
        header, head = probe(spooled, fmt, limits.max_frames, limits)
        planned = plan(header, self.config)  # limits and cost checked, before any pixel
        decoded = decode(spooled, planned, header, budget)
        budget.check("decoding")
        t_decode = time.perf_counter()

        encodes = Encodes(self._pool, budget)
        with encodes.failing(spooled, header.format, "making the renditions"):
            smallest = derive_all(decoded, planned, budget, then=encodes.submit)
            pixels = header.width * header.height
            blank.check(smallest.image, spooled, header.format, pixels)  # no blank "done"
            budget.check("deriving the renditions")
            colour, placeholder = describe(smallest.image)
            blobs = encodes.results()
        t_encode = time.perf_counter()
        scores: list[float | None] = [None] * len(blobs)
        if planned.scored:
            # The encoders' freed memory given back, and the scores made on an encode thread,
            # whose arena holds what is left of it: the scores then add little to the peak
            # (processor/imaging/heap.py).
            heap.give_back()
            scores = self._pool.submit(
                lambda: [
                    self._score(pixels, enc.format, blob.data, budget)
                    for (_, pixels, enc), blob in zip(encodes.jobs, blobs, strict=True)
                ]
            ).result()
        t_score = time.perf_counter()

        version = content_version(spooled.sha256, self.config.version) if versioned else None
        outputs = [
            Output(
                info=RenditionInfo(
                    name=r.name,
                    key=rendition_key(r.folder, image_id, enc.format, version),
                    format=enc.format,
                    content_type=CONTENT_TYPES[enc.format],
                    width=pixels.size[0],
                    height=pixels.size[1],
                    bytes=len(blob.data),
                    animated=blob.animated,
                    score=scored,
                    quality=blob.quality,
                ),
                data=blob.data,
                trials=blob.trials,
            )
            for (r, pixels, enc), blob, scored in zip(encodes.jobs, blobs, scores, strict=True)
        ]
        outputs.sort(key=lambda o: (o.info.width * o.info.height, o.info.format))
        made = ImageFacts(
            **facts(header, head, spooled, planned),
            dominant_color=colour,
            placeholder=placeholder,
        )
        done = time.perf_counter()
        return Result(
            image_id=image_id,
            facts=made,
            outputs=outputs,
            config_version=self.config.version,
            content_version=version,
            timings={
                "read": round((t_read - started) * 1000, 2),
                "decode": round((t_decode - t_read) * 1000, 2),
                "encode": round((t_encode - t_decode) * 1000, 2),
                "score": round((t_score - t_encode) * 1000, 2),
                "total": round((done - started) * 1000, 2),
            },
        )
