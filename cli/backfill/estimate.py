"""The dry run: what a backfill would send, what it would cost and how long it would take.

Counting is a walk over the source (the listing, or every row of the inventory); formats come
from the key's suffix for every object and, for the first ``sniff`` objects, from their first
bytes (a ranged GET of 64 bytes each, read by processor/core/sniff.py). Time and cost come
from the capacity model (benchmarks/capacity.py): the processor's seconds per image and the
cost lines that docs/capacity.md prints, so the estimate and the document agree.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from cli.backfill.sources import Entry
from processor.core.formats import FORMATS
from processor.core.sniff import SNIFF_BYTES, detect_format
from processor.core.sources import Source, source_of

_BY_SUFFIX = {e: f.name for f in FORMATS for e in f.extensions}


class Skip:
    """Why an object is not sent (the dry run and the summary count each)."""

    folder = "folder marker"  # a key ending in "/": S3 consoles' empty "folders"
    output = "pipeline output"  # the bucket's own public prefix: renditions, never sources
    refused = "not a backfill source"  # outside raw/ and every source the processor may read


def skip_reason(
    entry: Entry, *, bucket: str, raw_prefix: str, public_prefix: str, sources: tuple[Source, ...]
) -> str | None:
    """None when the object is sent; else why not. The processor would refuse the same."""
    if entry.key.endswith("/"):
        return Skip.folder
    if entry.bucket == bucket and entry.key.startswith(public_prefix):
        return Skip.output
    if entry.bucket == bucket and entry.key.startswith(raw_prefix):
        return None
    if source_of(sources, entry.bucket, entry.key) is None:
        return Skip.refused
    return None


def suffix_format(key: str) -> str:
    name = key.rpartition("/")[2]
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    return _BY_SUFFIX.get(suffix, "other")


@dataclass
class Tally:
    objects: int = 0  # to send
    bytes: int = 0  # of the objects to send (0 for rows without a size)
    formats: Counter[str] = field(default_factory=Counter)  # by key suffix
    sniffed: Counter[str] = field(default_factory=Counter)  # by first bytes, a sample
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, entry: Entry) -> None:
        self.objects += 1
        self.bytes += entry.size or 0
        self.formats[suffix_format(entry.key)] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "bytes": self.bytes,
            "formats": dict(self.formats),
            "sniffed": dict(self.sniffed),
            "skipped": dict(self.skipped),
        }


def sniff(s3: Any, entry: Entry) -> str:
    """The format the object's first bytes say, or "unknown"."""
    try:
        head = s3.get_object(Bucket=entry.bucket, Key=entry.key, Range=f"bytes=0-{SNIFF_BYTES - 1}")
        found = detect_format(head["Body"].read())
    except Exception:  # gone, or unreadable: the processor will say which
        return "unreadable"
    return found or "unknown"


@dataclass(frozen=True)
class Estimate:
    objects: int
    rate: float  # images/s the backfill sends
    pipeline_rate: float  # images/s the processor's concurrency sustains
    seconds: float  # at the slower of the two
    usd: float
    usd_per_1000: float
    capped_objects: int | None = None  # what --max-cost lets through, if it caps

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Model:
    """What the capacity model says of one image (benchmarks/capacity.py)."""

    seconds_per_image: float  # processor time at the template's memory
    usd_per_1000: float  # every image's cost lines plus the paced feed's
    max_concurrency: int  # the template's MaxConcurrency

    @classmethod
    def load(cls) -> Model:
        from benchmarks import capacity

        facts, params = capacity.load_inputs()
        settings = capacity.Settings.from_parameters("deployed", params)
        lines = capacity.cost_lines(facts, settings, facts.lambda_usd_per_1000)
        return cls(
            seconds_per_image=capacity.seconds_per_image(facts, settings, capacity.Traffic()),
            usd_per_1000=capacity.cost_per_1000(lines, "paced"),
            max_concurrency=settings.max_concurrency,
        )

    def affordable(self, max_cost: float) -> int:
        """Images ``max_cost`` pays for (a hair of tolerance: 0.02 / 0.00004 is 500)."""
        return math.floor(max_cost / (self.usd_per_1000 / 1000) + 1e-9)

    def rate_for(self, concurrency: int) -> float:
        """Images/s that ``concurrency`` processor instances sustain."""
        return concurrency / self.seconds_per_image


def estimate(
    objects: int, *, rate: float, model: Model, max_concurrency: int, max_cost: float | None
) -> Estimate:
    pipeline = model.rate_for(max_concurrency)
    pace = min(rate, pipeline)
    per_image = model.usd_per_1000 / 1000
    capped = None
    if max_cost is not None and model.affordable(max_cost) < objects:
        capped = model.affordable(max_cost)
    sent = objects if capped is None else capped
    return Estimate(
        objects=objects,
        rate=rate,
        pipeline_rate=pipeline,
        seconds=sent / pace if pace > 0 else math.inf,
        usd=sent * per_image,
        usd_per_1000=model.usd_per_1000,
        capped_objects=capped,
    )


def duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def describe(tally: Tally, est: Estimate) -> list[str]:
    """The dry run's report, line by line."""
    formats = ", ".join(f"{k} {v:,}" for k, v in tally.formats.most_common())
    lines = [
        f"objects    {tally.objects:,} to send ({tally.bytes / 1e9:,.2f} GB)",
        f"formats    {formats or '-'}  (by key suffix)",
    ]
    if tally.sniffed:
        sample = sum(tally.sniffed.values())
        found = ", ".join(f"{k} {v:,}" for k, v in tally.sniffed.most_common())
        lines.append(f"sniffed    {found}  (first bytes of {sample:,} objects)")
    if tally.skipped:
        lines.append(
            "skipped    " + ", ".join(f"{k} {v:,}" for k, v in tally.skipped.most_common())
        )
    pace = min(est.rate, est.pipeline_rate)
    lines.append(
        f"time       {duration(est.seconds)} at {pace:,.1f} images/s"
        + (
            f" (the processor sustains {est.pipeline_rate:,.1f}/s: slower than --rate)"
            if est.pipeline_rate < est.rate
            else ""
        )
    )
    lines.append(
        f"cost       ${est.usd:,.2f} (${est.usd_per_1000:.4f} per 1,000 images, docs/capacity.md)"
    )
    if est.capped_objects is not None:
        lines.append(f"cost cap   stops after {est.capped_objects:,} objects (--max-cost)")
    return lines
