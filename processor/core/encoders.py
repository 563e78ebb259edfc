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
    default: int


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
        Encoder("jpeg", Setting("jpeg", 1, 100, 82), None, alpha=False, with_alpha="png"),
        # PNG is lossless: its quality setting is zlib effort (0 fastest .. 9 smallest).
        Encoder("png", Setting("png_compression", 0, 9, 6), None, alpha=True),
        # WebP effort 4 is libwebp's (and Pillow's, sharp's) default; 2 halves the encode time
        # of a 2048 px WebP but, at equal SSIM, needs about 15% more bytes (`make bench`,
        # "WebP effort against bytes at equal quality").
        Encoder(
            "webp",
            Setting("webp", 1, 100, 80),
            Setting("webp_effort", 0, 6, 4),
            alpha=True,
            animation=True,
        ),
        # libaom is slow: effort 2 keeps a 2048 px encode near a second; 9 is smallest.
        Encoder(
            "avif",
            Setting("avif", 1, 100, 55),
            Setting("avif_effort", 0, 9, 2),
            alpha=True,
            memory_per_pixel=32,
        ),
    )
}


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
