"""The encoder table: one entry per output format, and everything the pipeline knows about it.

Config validation (core/config.py: the quality fields, their ranges and defaults), the plan
(rules/plan.py: which format an image with alpha gets, which encodes carry animation), the
cost model (rules/cost.py: the encoder's working memory) and the encode step
(imaging/encode.py: one save function per entry, checked complete at engine start) all read
this table. A format without an entry is a config error; an entry without a save function
stops the engine at start: never another format's bytes.

Pure data: no libvips here, so the config (and the API, which never loads libvips) can read it.
Adding an output format is one entry here plus one save function (docs/development.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.core.formats import BY_NAME


@dataclass(frozen=True)
class Setting:
    """An integer encoder setting a rendition's ``quality`` block may set."""

    field: str  # the field of core.config.Quality that carries it
    low: int
    high: int
    # None: no fixed default; the calibration table (core/calibration.py) picks the value
    # that meets the rendition's perceptual target.
    default: int | None


@dataclass(frozen=True)
class Encoder:
    format: str  # the output format's name (core/formats.py), the key of ENCODERS
    quality: Setting  # what trades bytes for fidelity (PNG: zlib effort, it is lossless)
    effort: Setting | None  # CPU spent for fewer bytes at the same quality; None: no such knob
    alpha: bool  # the file can carry an alpha channel
    # The format an image with alpha gets instead (JPEG -> PNG); None: alpha is kept, or
    # flattened onto white when ``alpha`` is False.
    with_alpha: str | None = None
    animation: bool = False  # the file can carry an animation (frames, delays, loop)
    # Encoder working memory per pixel of the output (bytes), on top of what every output
    # costs (rules/cost.py OUTPUT_BYTES_PER_PIXEL): libaom's is measured at ~100 MB for a
    # 2048x2048 AVIF.
    memory_per_pixel: int = 0

    @property
    def calibrated(self) -> bool:
        """Lossy: the quality comes from the rendition's target through the calibration."""
        return self.quality.default is None

    @property
    def default_effort(self) -> int:
        """The effort an encode uses unless the config sets one; 0 without such a knob."""
        return (self.effort.default or 0) if self.effort else 0

    @property
    def settings(self) -> tuple[Setting, ...]:
        return (self.quality,) if self.effort is None else (self.quality, self.effort)

    @property
    def content_type(self) -> str:
        return BY_NAME[self.format].content_types[0]

    @property
    def extension(self) -> str:
        return BY_NAME[self.format].extensions[0]


ENCODERS: dict[str, Encoder] = {
    e.format: e
    for e in (
        # JPEG effort: 0 baseline with optimised Huffman tables; 1 progressive as well (about
        # 0.9x the bytes); 2 mozjpeg's trellis quantisation, overshoot deringing, optimised
        # scans and quant table 3 as well (about 0.8x the bytes at equal SSIMULACRA2, for
        # about 5x the encode time: `python -m benchmarks.bytes`). Every one decodes in any
        # JPEG decoder.
        Encoder(
            "jpeg",
            Setting("jpeg", 1, 100, None),
            Setting("jpeg_effort", 0, 2, 2),
            alpha=False,
            with_alpha="png",
        ),
        # PNG is lossless: its quality setting is zlib effort (0 fastest .. 9 smallest).
        Encoder("png", Setting("png_compression", 0, 9, 6), None, alpha=True),
        # WebP effort 4 is libwebp's (and Pillow's, sharp's) default; 2 halves the encode time
        # of a 2048 px WebP but, at equal SSIM, needs about 15% more bytes (`make bench`,
        # "WebP effort against bytes at equal quality").
        Encoder(
            "webp",
            Setting("webp", 1, 100, None),
            Setting("webp_effort", 0, 6, 4),
            alpha=True,
            animation=True,
        ),
        # libaom is slow, and its effort steps are uneven. At equal SSIMULACRA2 (80) on 24
        # real photos, 2048 px box: effort 3 needs about 0.96x effort 2's bytes for 1.4x its
        # CPU (0.76 against 0.53 s for a 2048 px encode); effort 4 about 0.91x for 8x
        # (4.2 s). So 3: the bytes every delivery saves repay its CPU after a few dozen
        # downloads, and a 2048 px AVIF stays under a second (docs/engine.md, the efforts).
        Encoder(
            "avif",
            Setting("avif", 1, 100, None),
            Setting("avif_effort", 0, 9, 3),
            alpha=True,
            memory_per_pixel=32,
        ),
    )
}


# The order a page offers the formats in (`<picture>` sources, the API's srcset keys): the
# smallest file at the same perceptual quality first, since a browser takes the first it reads.
# AVIF needs about 0.6x the bytes of WebP and WebP about 0.8x JPEG's at equal SSIMULACRA2
# (benchmarks/results/bytes.md); PNG, lossless, last.
SERVED_FIRST: tuple[str, ...] = ("avif", "webp", "jpeg", "png")
if set(SERVED_FIRST) != set(ENCODERS):
    raise RuntimeError(f"SERVED_FIRST {SERVED_FIRST} != encoders {set(ENCODERS)}")


def encoder(fmt: str) -> Encoder:
    """The entry of ``fmt``; a format without one is a configuration error, said plainly."""
    entry = ENCODERS.get(fmt)
    if entry is None:
        raise ValueError(f"no encoder for output format {fmt!r}; known: {', '.join(ENCODERS)}")
    return entry


def setting(field: str) -> Setting:
    """The setting a ``Quality`` field carries (config validation reads its range)."""
    for entry in ENCODERS.values():
        for s in entry.settings:
            if s.field == field:
                return s
    raise KeyError(field)
