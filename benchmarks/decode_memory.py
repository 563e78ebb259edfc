"""``python -m benchmarks.decode_memory``: peak memory of real decodes against the cost model.

For each case an image is generated (flat pixels: a few KB for a GIF of tens of megapixels,
which is exactly what a decompression bomb looks like), then one fresh process builds the
engine, processes a tiny image (so that libvips' threads and buffers exist), notes its RSS,
processes the case and reads its peak RSS (VmHWM; not ``ru_maxrss``, which carries the
parent's high-water mark across fork and exec). The difference is the image's own peak, the
quantity processor/rules/cost.py estimates. tests/processor/imaging/test_cost_measured.py measures
smaller cases.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    format: str  # jpeg, png, webp, gif, tiff, avif, heic
    width: int
    height: int
    bands: int = 3
    variant: str = ""  # "progressive" (JPEG), "interlaced" (PNG), "float" (TIFF)
    frames: int = 1  # more: an animation (GIF, WebP, APNG as "png", AVIF sequence)

    @property
    def name(self) -> str:
        extra = f"-{self.variant}" if self.variant else ""
        frames = f"-{self.frames}f" if self.frames > 1 else ""
        return f"{self.format}{extra}-{self.width}x{self.height}x{self.bands}{frames}"


def generate(case: Case, directory: Path) -> Path:
    """A flat image of the case's size and kind, written with libvips (GIF: Pillow)."""
    import pyvips

    suffix = {"jpeg": "jpg"}.get(case.format, case.format)
    path = directory / f"{case.name}.{suffix}"
    if case.frames > 1:
        return animate(case, path)
    image = (pyvips.Image.black(case.width, case.height, bands=case.bands) + 120).cast("uchar")
    if case.bands >= 3:
        image = image.copy(interpretation="srgb")
    if case.format == "jpeg":
        image.jpegsave(str(path), Q=80, interlace=case.variant == "progressive")
    elif case.format == "png":
        image.pngsave(str(path), interlace=case.variant == "interlaced")
    elif case.format == "webp":
        # effort 0 is the quickest to write (libwebp refused it at 16000x16000 here)
        image.webpsave(str(path), **({"effort": 0} if case.width <= 8000 else {}))
    elif case.format == "gif":
        from PIL import Image

        # Pillow writes a flat GIF ten times faster than libvips' quantising gifsave.
        Image.new("P", (case.width, case.height)).save(path)
    elif case.format == "tiff":
        if case.variant == "float":
            image = image.cast("float").copy(interpretation="scrgb")
        image.tiffsave(str(path), compression="deflate")
    elif case.format == "heic":
        import pillow_heif  # x265 (GPL): a dev dependency, never shipped
        from PIL import Image

        flat = Image.new("RGB", (case.width, case.height), (120, 120, 120))
        pillow_heif.from_pillow(flat).save(
            path, format="HEIF", quality=50, tile_size=512, enc_params={"preset": "ultrafast"}
        )
    elif case.format == "avif":
        image.heifsave(str(path), compression="av1", effort=0, Q=30)
    else:
        raise ValueError(f"no generator for {case.format}")
    return path


def animate(case: Case, path: Path) -> Path:
    """An animation whose every frame differs from the last (a gradient that moves), so that
    no encoder merges frames: the worst case for memory. Written with Pillow."""
    from PIL import Image

    mode = "RGBA" if case.bands == 4 else "RGB"
    frames = []
    for index in range(case.frames):
        ramp = Image.linear_gradient("L").resize((case.width, case.height))
        shifted = ramp.point(lambda v, i=index: (v + 7 * i) % 256)  # type: ignore[misc]
        frame = Image.merge(
            "RGB", (shifted, ramp, shifted.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        )
        frames.append(frame.convert(mode) if mode == "RGBA" else frame)
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": 40}
    if case.format == "gif":
        frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
        options["append_images"] = frames[1:]
    elif case.format == "webp":
        options.update(quality=80, method=0)
    elif case.format == "avif":
        options.update(quality=50, speed=10)
    frames[0].save(path, format=case.format.upper(), **options)
    return path


# Runs in a fresh interpreter: its RSS high-water mark is its own (see benchmarks/memprobe.py).
_PROBE = r"""
import json, sys
import pyvips
from processor.core.config import EngineConfig, Limits
from processor.imaging.engine import Engine
from processor.imaging.probe import probe
from processor.imaging.sniff import sniff
from processor.imaging.spool import spool
from processor.rules.plan import make_plan

def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

limits = Limits(
    max_pixels=10**10, max_pixels_whole=10**10, max_animation_pixels=10**12, max_animation_ms=10**9
)
engine = Engine(EngineConfig(limits=limits))
engine.process(sys.argv[2], image_id="warm-up")
with spool(sys.argv[1], 10**12) as spooled:
    header, _ = probe(spooled, sniff(spooled))
    estimate = make_plan(header, engine.config).cost.memory_bytes
before = status_kb("VmRSS")
engine.process(sys.argv[1], image_id="case")
peak = status_kb("VmHWM")
print(json.dumps({"base_kb": before, "peak_kb": peak, "estimate": estimate}))
"""


@dataclass(frozen=True)
class Measured:
    case: Case
    input_bytes: int
    peak_bytes: int  # above the warm engine's own RSS
    estimate_bytes: int

    def row(self) -> str:
        ratio = self.estimate_bytes / max(1, self.peak_bytes)
        return (
            f"| {self.case.name} | {self.input_bytes:,} | {self.peak_bytes / MB:,.0f} | "
            f"{self.estimate_bytes / MB:,.0f} | {ratio:.2f} |"
        )


def measure(
    case: Case, directory: Path, make: Callable[[Case, Path], Path] | None = None
) -> Measured:
    """``make``: writes the case's file in the directory (default: ``generate``)."""
    path = (make or generate)(case, directory)
    warm = directory / "warm-up.png"
    if not warm.exists():
        import pyvips

        (pyvips.Image.black(64, 64, bands=3) + 50).cast("uchar").pngsave(str(warm))
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(warm)],
        capture_output=True,
        text=True,
        check=True,
        env={"MALLOC_ARENA_MAX": "2", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[1],
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    size = path.stat().st_size
    path.unlink()
    return Measured(
        case=case,
        input_bytes=size,
        peak_bytes=max(0, answer["peak_kb"] - answer["base_kb"]) * 1024,
        estimate_bytes=answer["estimate"],
    )


CASES = (
    Case("jpeg", 16000, 16000),
    Case("jpeg", 8000, 8000, variant="progressive"),
    Case("png", 16000, 16000),
    Case("png", 8000, 8000, bands=4),
    Case("png", 6000, 6000, variant="interlaced"),
    Case("tiff", 16000, 16000),
    Case("tiff", 8000, 8000, bands=4, variant="float"),
    Case("webp", 16000, 16000),
    Case("webp", 8000, 8000, bands=4),
    Case("gif", 6000, 6000),
    Case("gif", 12000, 12000),
    Case("gif", 17000, 17000),
    Case("avif", 4000, 4000),
    Case("avif", 8000, 8000),
    Case("heic", 4000, 3000),
    Case("heic", 8000, 6000),
    # animations kept animated: every frame held at the decode size
    Case("gif", 480, 270, frames=50),
    Case("gif", 480, 270, frames=200),
    Case("gif", 480, 270, frames=800),
    Case("gif", 1000, 1000, frames=50),
    Case("webp", 480, 270, bands=4, frames=200),
    Case("png", 480, 270, bands=4, frames=200),
    Case("avif", 480, 270, frames=100),
)


def main() -> int:
    sys.stdout.write("| case | input bytes | peak MB | estimate MB | estimate/peak |\n")
    sys.stdout.write("|---|---:|---:|---:|---:|\n")
    with tempfile.TemporaryDirectory(prefix="imgpipe-decode-memory-") as tmp:
        for case in CASES:
            sys.stdout.write(measure(case, Path(tmp)).row() + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
