"""``python -m benchmarks.avif_memory``: AVIF's decode peak across sizes, against the cost model.

Unlike ``benchmarks.decode_memory`` (flat pixels), these AVIFs carry detail (a photo-like
pattern of gradients and noise), 8- and 10-bit, so libheif's planes and libvips' copies are
what a real photo costs. Each decode runs in a fresh process (its RSS high-water mark is its
own); the table gives the peak above the warm engine, bytes per pixel, and the cost model's
estimate against it (processor/rules/cost.py: ``AVIF_DECODE_BYTES_PER_PIXEL``). Bounded: four
sizes, about a minute on two cores.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.decode_memory import MB, Case, measure

SIZES = ((2000, 1500, 8), (4000, 3000, 8), (5200, 3900, 8), (4000, 3000, 10))


@dataclass(frozen=True)
class DetailedCase(Case):
    depth: int = 8

    @property
    def name(self) -> str:
        return f"avif-{self.depth}bit-{self.width}x{self.height}"


def write(case: Case, directory: Path) -> Path:
    import pyvips

    assert isinstance(case, DetailedCase)
    path = directory / f"{case.name}.avif"
    xy = pyvips.Image.xyz(case.width, case.height)
    base = (xy[0] * 255 / case.width).bandjoin([xy[1] * 255 / case.height, (xy[0] + xy[1]) % 256])
    noise = pyvips.Image.gaussnoise(case.width, case.height, sigma=24, mean=0)
    image = (base + noise).copy(interpretation="srgb")
    if case.depth > 8:
        image = (image * 256).cast("ushort").copy(interpretation="rgb16")
        image.heifsave(str(path), compression="av1", effort=0, Q=40, bitdepth=case.depth)
    else:
        image.cast("uchar").heifsave(str(path), compression="av1", effort=0, Q=40)
    return path


def main() -> int:
    sys.stdout.write(
        "| case | input bytes | peak MB | bytes/pixel | estimate MB | estimate/peak |\n"
    )
    sys.stdout.write("|---|---:|---:|---:|---:|---:|\n")
    with tempfile.TemporaryDirectory(prefix="imgpipe-avif-memory-") as tmp:
        for width, height, depth in SIZES:
            case = DetailedCase("avif", width, height, depth=depth)
            m = measure(case, Path(tmp), make=write)
            per_pixel = m.peak_bytes / (width * height)
            sys.stdout.write(
                f"| {case.name} | {m.input_bytes:,} | {m.peak_bytes / MB:,.0f} | "
                f"{per_pixel:.1f} | {m.estimate_bytes / MB:,.0f} | "
                f"{m.estimate_bytes / max(1, m.peak_bytes):.2f} |\n"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
