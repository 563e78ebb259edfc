"""``python -m benchmarks.calibrate``: each lossy format's quality setting against SSIMULACRA2.

Every lossy rendition aims at one perceptual target (core/config.py ``target``). This command
measures, on real photos (the 14 of PHOTOS, from public test suites and the shared corpus, and
the 10 camera photos of benchmarks/camera.py) at the two default rendition sizes (320 and 2048
px, never upscaled), the SSIMULACRA2 score each format reaches at a range of quality settings
(with the encoder table's default efforts, through the engine's own save functions), and writes
the median score per setting to processor/core/calibration_table.py, which core/calibration.py
inverts (target -> quality). It also records the median score of the settings the engine used
before the calibration (JPEG q82 baseline, WebP q80, AVIF q55), from which the default target
is chosen.

SSIMULACRA2 is the reference C++ tool from libjxl (BSD-3-Clause), found through the
SSIMULACRA2 environment variable, then on PATH, then in benchmarks/.cache/ssimulacra2/bin
(benchmarks/tools/ssimulacra2.sh builds it). ``--port`` scores with the engine's own port
(processor/imaging/score.py), which reads higher than the binary on large flat areas at high
quality (docs/engine.md, Scores): for a run without the binary. The table says which scorer
wrote it. Each score compares the decoded
rendition against the reference pixels it was encoded from (the photo resized to the box,
8-bit sRGB).

    python -m benchmarks.calibrate            # 24 photos, writes the table
    python -m benchmarks.calibrate --dry-run  # measure and print, write nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyvips

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".." / "shared" / "corpus" / "good"
SAMPLES = REPO / "tests" / "samples"
CACHE = Path(__file__).resolve().parent / ".cache"
TABLE = REPO / "processor" / "core" / "calibration_table.py"

# Real photos (camera, phone, web), of every format the engine reads; none is synthetic.
# The first eight are the small default set of benchmarks.bytes.
PHOTOS: tuple[Path, ...] = (
    CORPUS / "2569067123_aca715a2ee_o.jpg",  # 2725x2225 camera photo
    CORPUS / "gain-map.jpg",  # 3840x2160 phone photo (Ultra HDR base image)
    CORPUS / "flowers.jpeg",  # 1920x1080
    SAMPLES / "pillow-heif" / "xiaomi.heic",  # 2592x1944 phone
    SAMPLES / "pillow-heif" / "arrow.heic",  # 3024x4032 phone
    SAMPLES / "av1-avif" / "animals_00_singlelayer.avif",  # 2048x1536
    CORPUS / "4.webp",  # 1024x772, Google's WebP gallery
    SAMPLES / "link-u" / "fox.profile0.10bpc.yuv420.avif",  # 1204x800
    CORPUS / "Landscape_1.jpg",  # 600x450
    SAMPLES / "link-u" / "kimono.rotate90.avif",  # 722x1024
    CORPUS / "Portrait_6.jpg",  # 600x450, orientation 6
    SAMPLES / "libavif" / "sofa_grid1x5_420.avif",  # 1024x770
    SAMPLES / "pillow" / "rot1mir0.avif",  # 640x427
    CORPUS / "pitm.avif",  # 4096x800 panorama
)
BOXES = (320, 2048)  # the default renditions' boxes


def photo_set(first: int = len(PHOTOS), camera: bool = True) -> list[Path]:
    """The first ``first`` of PHOTOS (those present) and, with ``camera``, the ten camera
    photos of benchmarks/camera.py (fetched from Debian the first time)."""
    photos = [p for p in PHOTOS[:first] if p.is_file()]
    if camera:
        from benchmarks.camera import camera_photos

        photos += camera_photos()
    return photos


# Quality settings tried per format (the encoder table's default efforts).
GRID: dict[str, tuple[int, ...]] = {
    "jpeg": (50, 60, 70, 78, 85, 90, 95),
    "webp": (50, 60, 70, 78, 85, 90, 95),
    "avif": (35, 45, 55, 60, 65, 70, 80),
}
# What the engine wrote before the calibration: fixed settings per format.
BEFORE: dict[str, tuple[int, int]] = {"jpeg": (82, 0), "webp": (80, 4), "avif": (55, 2)}


@dataclass(frozen=True)
class Row:
    photo: str
    box: int
    label: str  # which encoder and settings family ("engine jpeg", "before jpeg", ...)
    format: str
    quality: int
    bytes: int
    score: float
    width: int
    height: int
    cpu_ms: float


Encoder = Callable[[pyvips.Image, int], bytes]  # (reference pixels, quality) -> file


def ssimulacra2(port: bool = False) -> str | None:
    """The reference SSIMULACRA2 binary; None: ``port``, the NumPy port scores."""
    if port:
        return None
    candidates = [
        os.environ.get("SSIMULACRA2"),
        shutil.which("ssimulacra2"),
        str(CACHE / "ssimulacra2" / "bin" / "ssimulacra2"),
    ]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise SystemExit(
        "no ssimulacra2 binary: build it with benchmarks/tools/ssimulacra2.sh, point the "
        "SSIMULACRA2 environment variable at one, or pass --port for a rough run"
    )


def scorer_name(binary: str | None) -> str:
    if binary:
        return "libjxl tools/ssimulacra2 (reference binary)"
    return "processor/imaging/score.py (the engine's port)"


def reference(path: Path, box: int) -> pyvips.Image:
    """The pixels a rendition of ``box`` is encoded from: the photo, oriented, resized to fit
    the box (never up), 8-bit sRGB without alpha, as the engine makes them."""
    from processor.imaging.pixels import to_srgb

    if path.suffix == ".heic":  # HEVC: the engine's own decoder (libvips' libheif has none)
        from processor.imaging.heic import decode_primary

        px = decode_primary(path)
        whole = pyvips.Image.new_from_memory(bytes(px.data), px.width, px.height, px.bands, "uchar")
        image = to_srgb(whole.thumbnail_image(box, height=box, size="down"))
    else:
        image = to_srgb(pyvips.Image.thumbnail(str(path), box, height=box, size="down"))
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.cast("uchar").copy_memory()


def engine_encoder(fmt: str, effort: int | None = None) -> Encoder:
    """The engine's own save function for ``fmt`` at the table's default effort."""
    from processor.core.encoders import ENCODERS
    from processor.imaging.encode import encode
    from processor.imaging.pixels import hold
    from processor.rules.plan import Encode

    entry = ENCODERS[fmt]
    if effort is None:
        effort = entry.default_effort

    def run(image: pyvips.Image, quality: int) -> bytes:
        enc = Encode(format=fmt, quality=quality, effort=effort)  # type: ignore[arg-type]
        return encode(hold(image), enc).data

    return run


def before_encoder(fmt: str) -> Encoder:
    """The engine's settings before the calibration (main's save functions)."""

    def run(image: pyvips.Image, quality: int) -> bytes:
        if fmt == "jpeg":
            return bytes(image.jpegsave_buffer(Q=quality, keep="none"))
        if fmt == "webp":
            return bytes(image.webpsave_buffer(Q=quality, effort=4, keep="none"))
        return bytes(
            image.heifsave_buffer(Q=quality, compression="av1", effort=2, keep="none", bitdepth=8)
        )

    return run


def _score(binary: str | None, ref: pyvips.Image, ref_file: Path, data: bytes, work: Path) -> float:
    decoded = pyvips.Image.new_from_buffer(data, "")
    if decoded.hasalpha():
        decoded = decoded.flatten(background=[255, 255, 255])
    decoded = decoded.cast("uchar")
    if binary is None:
        from processor.imaging.score import ssimulacra2 as port

        return port(ref, decoded)
    fd, name = tempfile.mkstemp(suffix=".png", dir=work)
    os.close(fd)
    try:
        decoded.pngsave(name, compression=1)
        done = subprocess.run(
            [binary, str(ref_file), name], capture_output=True, text=True, check=True
        )
        return float(done.stdout.split()[-1])
    finally:
        Path(name).unlink()


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:20]


class Measurer:
    """Encodes and scores, remembering results in benchmarks/.cache/scores.json (a rerun, or
    benchmarks.bytes after a calibration, skips what it has: same photo, box, encoder label,
    quality and encoder version string)."""

    def __init__(
        self,
        workers: int = 2,
        cache_file: str = "scores.json",
        also_read: Sequence[str] = (),
        port: bool = False,
    ) -> None:
        self.binary = ssimulacra2(port)
        self.scorer = scorer_name(self.binary)
        self.workers = workers
        self.cache_file = CACHE / cache_file
        self.cache: dict[str, dict[str, Any]] = {}
        for name in (*also_read, cache_file):
            if (CACHE / name).is_file():
                self.cache.update(json.loads((CACHE / name).read_text()))
        self.work = Path(tempfile.mkdtemp(prefix="calibrate-"))
        self.refs: dict[tuple[str, int], tuple[pyvips.Image, Path]] = {}

    def ref(self, photo: Path, box: int) -> tuple[pyvips.Image, Path]:
        k = (str(photo), box)
        if k not in self.refs:
            image = reference(photo, box)
            f = self.work / f"ref-{len(self.refs)}.png"
            image.pngsave(str(f), compression=1)
            self.refs[k] = (image, f)
        return self.refs[k]

    def key(self, photo: Path, box: int, label: str, quality: int, tag: str) -> str:
        return _key(photo.name, box, label, quality, tag, self.scorer, pyvips.version(1))

    def cached(self, photo: Path, box: int, label: str, quality: int, tag: str) -> bool:
        return self.key(photo, box, label, quality, tag) in self.cache

    def one(
        self, photo: Path, box: int, label: str, fmt: str, quality: int, fn: Encoder, tag: str
    ) -> Row:
        key = self.key(photo, box, label, quality, tag)
        if key in self.cache:
            return Row(**self.cache[key])
        image, ref_file = self.ref(photo, box)
        t0 = time.thread_time()
        data = fn(image, quality)
        cpu = (time.thread_time() - t0) * 1e3
        s = _score(self.binary, image, ref_file, data, self.work)
        w, h = image.width, image.height
        row = Row(photo.name, box, label, fmt, quality, len(data), s, w, h, cpu)
        self.cache[key] = asdict(row)
        return row

    def run(
        self,
        photos: Sequence[Path],
        jobs: Iterable[tuple[str, str, Sequence[int], Encoder, str]],
        boxes: Sequence[int] = BOXES,
    ) -> list[Row]:
        """Every (photo, box) through every job: (label, format, qualities, encoder, tag)."""
        for photo in photos:  # references first, on this thread
            for box in boxes:
                self.ref(photo, box)
        work = [
            (photo, box, label, fmt, q, fn, tag)
            for label, fmt, qualities, fn, tag in jobs
            for photo in photos
            for box in boxes
            for q in qualities
        ]
        rows: list[Row] = []
        with ThreadPoolExecutor(self.workers) as pool:
            for row in pool.map(lambda a: self.one(*a), work):
                rows.append(row)
                if len(rows) % 20 == 0:  # a long run keeps what it measured if stopped
                    self.save()
        self.save()
        return rows

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(self.cache)))
        tmp.replace(self.cache_file)

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def medians(rows: Iterable[Row]) -> dict[tuple[str, int, int], float]:
    """Median score per (label, box, quality)."""
    groups: dict[tuple[str, int, int], list[float]] = {}
    for r in rows:
        groups.setdefault((r.label, r.box, r.quality), []).append(r.score)
    return {k: round(statistics.median(v), 2) for k, v in groups.items()}


def jobs() -> list[tuple[str, str, Sequence[int], Encoder, str]]:
    from processor.core.encoders import ENCODERS
    from processor.imaging.encode import JPEG_EFFORT

    out: list[tuple[str, str, Sequence[int], Encoder, str]] = []
    for fmt, entry in ENCODERS.items():
        if not entry.calibrated:
            continue
        effort = entry.default_effort
        tag = json.dumps([effort, JPEG_EFFORT.get(effort) if fmt == "jpeg" else None])
        out.append((f"engine {fmt}", fmt, GRID[fmt], engine_encoder(fmt), tag))
    for fmt, (q, _effort) in BEFORE.items():
        out.append((f"before {fmt}", fmt, (q,), before_encoder(fmt), "before"))
    return out


def render_table(rows: list[Row], photos: Sequence[Path], scorer: str) -> str:
    from processor.core.encoders import ENCODERS

    med = medians(rows)
    curves: dict[str, dict[int, list[tuple[int, float]]]] = {}
    for (label, box, q), s in sorted(med.items()):
        if label.startswith("engine "):
            curves.setdefault(label.removeprefix("engine "), {}).setdefault(box, []).append((q, s))
    before = {
        fmt: {box: med[(f"before {fmt}", box, q)] for box in BOXES}
        for fmt, (q, _e) in BEFORE.items()
    }
    efforts = {
        e.effort.field: e.effort.default for e in ENCODERS.values() if e.calibrated and e.effort
    }
    lines = [
        '"""The calibration table: median SSIMULACRA2 score per quality setting, per lossy format',
        "and output size. Written by `python -m benchmarks.calibrate`; do not edit by hand.",
        "",
        "core/calibration.py inverts it (target score -> quality setting).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        'METRIC = "ssimulacra2"',
        f"SCORER = {scorer!r}",
        f"PHOTOS = {len(photos)}  # real photos measured (benchmarks/calibrate.py photo_set)",
        f"LIBVIPS = {'.'.join(str(pyvips.version(i)) for i in range(3))!r}",
        f"EFFORTS = {efforts!r}  # the effort settings the curves hold for",
        "# Median score of the settings the engine used before the calibration (quality, effort):",
        f"# {', '.join(f'{f} {q}/{e}' for f, (q, e) in BEFORE.items())}.",
        f"BEFORE: dict[str, dict[int, float]] = {before!r}",
        "# format -> output box (long side, px) -> ((quality setting, median score), ...)",
        "CURVES: dict[str, dict[int, tuple[tuple[int, float], ...]]] = {",
    ]
    for fmt in sorted(curves):
        lines.append(f"    {fmt!r}: {{")
        for box in sorted(curves[fmt]):
            pts = ", ".join(f"({q}, {s})" for q, s in curves[fmt][box])
            lines.append(f"        {box}: ({pts}),")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=len(PHOTOS), help="use the first N")
    parser.add_argument(
        "--no-camera", action="store_true", help="leave out the camera photos (benchmarks.camera)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    parser.add_argument("--port", action="store_true", help="score with the engine's port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    photos = photo_set(args.photos, camera=not args.no_camera)
    m = Measurer(args.workers, port=args.port)
    try:
        t0 = time.monotonic()
        rows = m.run(photos, jobs())
        log.info("%d encodes scored in %.0f s", len(rows), time.monotonic() - t0)
    finally:
        m.close()
    text = render_table(rows, photos, m.scorer)
    if args.dry_run:
        print(text)
        return
    TABLE.write_text(text)
    ruff = Path(sys.executable).with_name("ruff")
    subprocess.run([str(ruff), "format", str(TABLE)], check=False, capture_output=True)
    log.info("wrote %s", TABLE.relative_to(REPO))


if __name__ == "__main__":
    main()
