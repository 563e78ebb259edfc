"""Rendition and limit configuration: data, not code.

A rendition is (name, output folder, bounding box, fit, formats, quality). The whole config
hashes to a short ``version`` that each stored record keeps, so that images made under an
older config can be found and re-derived.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from processor.core import auto_offsets, calibration
from processor.core.encoders import ENCODERS, encoder, setting
from processor.core.errors import ImageTooLarge

# "jpeg" means: JPEG, or PNG when the image has alpha (JPEG cannot carry it).
OutputFormat = Literal["jpeg", "png", "webp", "avif"]
Fit = Literal["inside", "cover"]
# Which part of the image a `cover` rendition keeps (libvips' smartcrop): "attention" finds
# the salient region (skin, saturated colour, edges), "entropy" the busiest, "centre" the
# middle. Portraits and avatars lose their heads to "centre".
Crop = Literal["centre", "attention", "entropy"]

MiB = 1024 * 1024


def _setting(name: str) -> Any:
    """A Quality field whose range and default are the encoder table's (core/encoders.py)."""
    s = setting(name)
    return Field(s.default, ge=s.low, le=s.high)


class Quality(BaseModel):
    """Per-format encoder settings; ranges and defaults come from the encoder table.

    A lossy format's quality left unset (None) is read off the calibration table
    (core/calibration.py) so that the rendition meets its ``target``; set, it is used as is.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    jpeg: int | None = _setting("jpeg")
    webp: int | None = _setting("webp")
    avif: int | None = _setting("avif")
    png_compression: int = _setting("png_compression")  # PNG is lossless: zlib effort
    jpeg_effort: int = _setting("jpeg_effort")
    webp_effort: int = _setting("webp_effort")
    avif_effort: int = _setting("avif_effort")


# The SSIMULACRA2 score every lossy rendition aims at, whatever its format (90: visually
# lossless to most viewers at 1:1, 70: artefacts visible when looked for). Chosen from
# measurement: the median score of the JPEG q82 the engine wrote before the calibration,
# rounded up, so no rendition got worse (core/calibration_table.py, BEFORE).
DEFAULT_TARGET = 80.0


class RenditionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    # Folder under the output root (and, in S3, under the public prefix).
    folder: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    fit: Fit = "inside"
    crop: Crop = "attention"  # only used by fit=cover
    formats: tuple[OutputFormat, ...] = ("avif", "webp", "jpeg")
    # The SSIMULACRA2 score the lossy formats aim at (their quality from the calibration).
    target: float = Field(DEFAULT_TARGET, ge=30, le=95)
    quality: Quality = Quality()
    # True: each image's own quality for every lossy format whose quality is left unset,
    # searched so that the rendition meets ``target`` (processor/imaging/tune.py: a few trial
    # encodes of a reduced copy, scored), where the calibration table's quality is the
    # corpus median's. It costs CPU at every upload; the calibrated quality is kept when the
    # image's time budget runs short.
    auto: bool = False
    # An animated upload (GIF, WebP, APNG, AVIF sequence) stays animated in the formats that
    # carry animation (the encoder table: WebP); the others get the still poster frame.
    # False: every format gets the still, as for any still image.
    animated: bool = True

    @field_validator("formats")
    @classmethod
    def _formats_unique(cls, v: tuple[OutputFormat, ...]) -> tuple[OutputFormat, ...]:
        if not v:
            raise ValueError("a rendition needs at least one format")
        if len(set(v)) != len(v):
            raise ValueError(f"formats repeat: {v}")
        for fmt in v:
            encoder(fmt)  # a format without an encoder entry is refused here, by name
        return v


class Limits(BaseModel):
    """Checked from the header, before any pixel is decoded (the time budget while decoding).

    Pixel limits depend on how the format is decoded (processor/rules/cost.py): libvips streams
    JPEG, PNG, TIFF and WebP through shrink-on-load in a few hundred rows, but holds a GIF
    frame or a HEIC/AVIF image whole. imgproxy refuses above 50 MP (any format) and weserv
    above 71 MP; here streamed formats may reach 300 MP, and whole decodes stop at 50 MP.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_input_bytes: int = Field(200 * MiB, ge=1)
    # width x height of the first frame, for streamed decodes (JPEG, PNG, TIFF, WebP).
    max_pixels: int = Field(300_000_000, ge=1)
    # ... and for formats decoded whole (GIF, HEIC, AVIF, progressive JPEG, interlaced PNG).
    max_pixels_whole: int = Field(50_000_000, ge=1)
    max_dimension: int = Field(65_000, ge=1)  # either side, in pixels
    # Frames of a multi-frame input (GIF, WebP, APNG, AVIF sequence, multi-page TIFF): every
    # frame is parsed when the header is read, so more are refused (too_many_frames).
    max_frames: int = Field(1_000, ge=1)
    # An animation over either limit below (or over the memory budget, from the cost model)
    # is not refused: its renditions are stills of the poster frame and the record says why.
    # Frames x width x height of the source: the pixels every frame's decode, resize and
    # encode go through.
    max_animation_pixels: int = Field(100_000_000, ge=1)
    # Total play time of one loop, in milliseconds (each frame's delay as browsers play it).
    max_animation_ms: int = Field(120_000, ge=1)
    # Bytes one image may use at its peak (estimated from the header, processor/rules/cost.py).
    # None: no budget (the CLI); the Lambda sets it from its memory
    # (processor/entrypoints/settings.py).
    max_image_memory: int | None = Field(None, ge=1)
    # Seconds one image may compute (decode, renditions, encodes), enforced inside libvips'
    # evaluation (processor/imaging/engine.py). None: no budget.
    max_seconds: float | None = Field(None, gt=0)


def check_bytes(size: int, limit: int, *, at_least: bool = False) -> None:
    """The one byte-limit rule and its message, wherever a size is known: the processor (from
    Content-Length, while spooling, from the header) and the API (an announced upload size).

    ``at_least``: ``size`` is what was counted so far of a longer stream.
    """
    if size > limit:
        more = " or more" if at_least else ""
        raise ImageTooLarge(f"the upload is {size:,} bytes{more}; the limit is {limit:,} bytes")


class Scoring(BaseModel):
    """The score step: each still rendition's SSIMULACRA2 against the pixels it was encoded
    from (processor/imaging/score.py). It reads and writes no output pixel, so it is not part
    of the config version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # On by default: every still rendition's record carries its score. A rendition above
    # ``sample_above`` pixels is measured at full and half size on ``sample_share`` of their
    # pixels (tiles, each value exactly the whole image's), the coarser scales whole: 0.15
    # points from the whole score on average and 1.0 at most. On four large photos the
    # default ladder took about 1.7x the CPU of the same ladder unscored (`python -m
    # benchmarks.bytes`, benchmarks/results/bytes.md; docs/capacity.md counts it). Off
    # (``"scoring": {"enabled": false}``) every score is null. The cost model counts the
    # step's memory, and a score that would not fit the memory budget is left out, never the
    # image.
    enabled: bool = True
    # A rendition with more pixels is scored on its centred crop of about this many (same
    # aspect, never below 8x8): a cap on the cost, not an estimate of the same number (a
    # 512x512 crop read up to 20 points off the whole rendition's score).
    max_pixels: int = Field(2048 * 2048, ge=64)
    # Above this many pixels a rendition's two finest scales are sampled (``sample_share``
    # of their pixels); at or below it the score is the whole rendition's, exactly.
    sample_above: int = Field(500_000, ge=0)
    sample_share: float = Field(1 / 16, gt=0, le=1)
    # Scoring is skipped (the score stays null) when less than this share of the image's time
    # budget is left after the encodes: a score must never turn a done image into a timeout.
    min_budget_left: float = Field(0.5, ge=0, le=1)


class EngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    renditions: tuple[RenditionSpec, ...] = (
        RenditionSpec(name="thumb", folder="thumbs", width=320, height=320),
        RenditionSpec(name="optimized", folder="optimized", width=2048, height=2048),
    )
    limits: Limits = Limits()
    # The frame (from 0) an animated upload's still renditions show: its poster. Past the last
    # frame, the last.
    poster_frame: int = Field(0, ge=0)
    scoring: Scoring = Scoring()

    @model_validator(mode="after")
    def _names_unique(self) -> EngineConfig:
        names = [r.name for r in self.renditions]
        if not names:
            raise ValueError("at least one rendition is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"rendition names repeat: {names}")
        return self

    @property
    def version(self) -> str:
        """Short hash of what decides the output pixels (limits excluded: they only refuse or
        keep an animation still, and the record says which)."""
        decisive: dict[str, object] = {
            "renditions": [_decisive(r) for r in self.renditions],
            "poster_frame": self.poster_frame,
        }
        if any(
            getattr(r.quality, e.quality.field) is None
            for r in self.renditions
            for e in (encoder(f) for f in r.formats)
            if e.calibrated
        ):
            # A quality read off the calibration table changes when the table is measured
            # anew: so does the version, and `imgpipe reprocess` finds the images made before.
            decisive["calibration"] = calibration.fingerprint()
        if any(r.auto for r in self.renditions):
            decisive["auto_offsets"] = auto_offsets.OFFSETS  # the search aims by them
        payload = json.dumps(decisive, sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    @classmethod
    def from_json(cls, text: str) -> EngineConfig:
        return cls.model_validate_json(text)

    @classmethod
    def from_file(cls, path: str | Path) -> EngineConfig:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _decisive(spec: RenditionSpec) -> dict[str, object]:
    """The fields that decide a rendition's pixels: `crop` only for cover renditions and
    `auto` only when on, so a config's version (and every image made under it) survives a
    field's arrival."""
    data = spec.model_dump(mode="json")
    if spec.fit != "cover":
        data.pop("crop")
    if not spec.auto:
        data.pop("auto")
    return data


def _check_against_the_encoder_table() -> None:
    """The output formats and quality fields are the encoder table's, no more, no fewer."""
    if set(get_args(OutputFormat)) != set(ENCODERS):
        raise RuntimeError(f"OutputFormat {get_args(OutputFormat)} != encoders {set(ENCODERS)}")
    fields = {s.field for e in ENCODERS.values() for s in e.settings}
    if fields != set(Quality.model_fields):
        raise RuntimeError(
            f"Quality fields {set(Quality.model_fields)} != encoder settings {fields}"
        )


_check_against_the_encoder_table()
DEFAULT_CONFIG = EngineConfig()
