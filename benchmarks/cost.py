"""Lambda cost per 1,000 images from measured time and memory. Pure: no I/O, no clock.

Lambda gives CPU in proportion to memory: 1,769 MB buys one vCPU-second per second, and a
function sees 2 vCPUs up to 3,008 MB. So at memory M an image that took ``wall`` ms on this
2-core machine, using ``cpu`` ms of CPU, takes about ``max(wall, cpu / share(M))`` ms, where
``share(M) = min(M / 1769, cores)``: below 1,769 MB even a single-threaded encoder is
throttled, and threads only help once the share passes one core. Billing is per 1 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MB_PER_VCPU = 1769
LAMBDA_MIN_MB, LAMBDA_MAX_MB = 128, 10240


@dataclass(frozen=True)
class Prices:
    arm64_gb_s: float = 0.0000133334  # USD per GB-second
    x86_64_gb_s: float = 0.0000166667
    per_million_requests: float = 0.20  # one image per invocation

    def per_gb_s(self, arch: str) -> float:
        return self.arm64_gb_s if arch == "arm64" else self.x86_64_gb_s


@dataclass(frozen=True)
class Estimate:
    memory_mb: int
    ms_per_image: float  # billed milliseconds, averaged over the images
    gb_s_per_1000: float
    usd_per_1000: dict[str, float] = field(default_factory=dict)  # arch -> USD
    fits: bool = True  # the measured peak RSS (plus headroom) fits in memory_mb

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def duration_ms(wall_ms: float, cpu_ms: float, memory_mb: int, cores: int) -> float:
    share = min(memory_mb / MB_PER_VCPU, cores)
    return max(wall_ms, cpu_ms / share)


def estimate(
    images: Sequence[tuple[float, float]],  # (wall ms, cpu ms) per image
    memory_mb: int,
    peak_rss_mb: float,
    prices: Prices,
    cores: int = 2,
    headroom: float = 1.1,
) -> Estimate:
    if not images:
        raise ValueError("no images to estimate from")
    billed = [math.ceil(duration_ms(w, c, memory_mb, cores)) for w, c in images]
    ms = sum(billed) / len(billed)
    gb_s = ms / 1000 * memory_mb / 1024 * 1000
    usd = {
        arch: gb_s * prices.per_gb_s(arch) + 1000 * prices.per_million_requests / 1e6
        for arch in ("arm64", "x86_64")
    }
    return Estimate(memory_mb, ms, gb_s, usd, fits=peak_rss_mb * headroom <= memory_mb)


def memory_sizes(step: int = 64) -> list[int]:
    return list(range(LAMBDA_MIN_MB, LAMBDA_MAX_MB + 1, step))


def best(
    images: Sequence[tuple[float, float]],
    peak_rss_mb: float,
    prices: Prices,
    cores: int = 2,
    arch: str = "arm64",
    sizes: Sequence[int] | None = None,
) -> Estimate:
    """The cheapest memory size that still fits the peak RSS."""
    candidates = [
        e
        for m in (sizes or memory_sizes())
        if (e := estimate(images, m, peak_rss_mb, prices, cores)).fits
    ]
    if not candidates:
        raise ValueError(f"peak RSS {peak_rss_mb:.0f} MB fits no Lambda memory size")
    return min(candidates, key=lambda e: (e.usd_per_1000[arch], e.memory_mb))
