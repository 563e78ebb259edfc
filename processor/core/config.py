"""Rendition and limit configuration: data, not code.

A rendition is (name, output folder, bounding box, fit, formats, quality). The whole config
hashes to a short ``version`` that each stored record keeps, so that images made under an
older config can be found and re-derived.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from processor.core.errors import ImageTooLarge

# "jpeg" means: JPEG, or PNG when the image has alpha (JPEG cannot carry it).
OutputFormat = Literal["jpeg", "png", "webp", "avif"]
Fit = Literal["inside", "cover"]
# Which part of the image a `cover` rendition keeps (libvips' smartcrop): "attention" finds
# the salient region (skin, saturated colour, edges), "entropy" the busiest, "centre" the
# middle. Portraits and avatars lose their heads to "centre".
Crop = Literal["centre", "attention", "entropy"]

MiB = 1024 * 1024


class Quality(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    jpeg: int = Field(82, ge=1, le=100)
    webp: int = Field(80, ge=1, le=100)
    avif: int = Field(55, ge=1, le=100)
    # PNG is lossless; this is zlib effort (0 fastest .. 9 smallest).
    png_compression: int = Field(6, ge=0, le=9)
    # Encoder effort: CPU spent to make the file smaller. WebP 4 is libwebp's (and Pillow's,
    # sharp's) default; 2 halves the encode time of a 2048 px WebP but, at equal SSIM, needs
    # about 15% more bytes (`make bench`, "WebP effort against bytes at equal quality").
    webp_effort: int = Field(4, ge=0, le=6)
    # AVIF (libaom) is slow: 2 keeps a 2048 px encode near a second; 9 is smallest.
    avif_effort: int = Field(2, ge=0, le=9)


class RenditionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    # Folder under the output root (and, in S3, under the public prefix).
    folder: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    fit: Fit = "inside"
    crop: Crop = "attention"  # only used by fit=cover
    formats: tuple[OutputFormat, ...] = ("jpeg", "webp")
    quality: Quality = Quality()

    @field_validator("formats")
    @classmethod
    def _formats_unique(cls, v: tuple[OutputFormat, ...]) -> tuple[OutputFormat, ...]:
        if not v:
            raise ValueError("a rendition needs at least one format")
        if len(set(v)) != len(v):
            raise ValueError(f"formats repeat: {v}")
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
    # Frames of an animated input (GIF, WebP, HEIF sequence); only the first is rendered, but
    # every frame is parsed when the header is read.
    max_frames: int = Field(1_000, ge=1)
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


class EngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    renditions: tuple[RenditionSpec, ...] = (
        RenditionSpec(name="thumb", folder="thumbs", width=320, height=320),
        RenditionSpec(name="optimized", folder="optimized", width=2048, height=2048),
    )
    limits: Limits = Limits()

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
        """Short hash of what decides the output pixels (limits excluded: they only refuse)."""
        payload = json.dumps([_decisive(r) for r in self.renditions], sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    @classmethod
    def from_json(cls, text: str) -> EngineConfig:
        return cls.model_validate_json(text)

    @classmethod
    def from_file(cls, path: str | Path) -> EngineConfig:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _decisive(spec: RenditionSpec) -> dict[str, object]:
    """The fields that decide a rendition's pixels: `crop` only for cover renditions, so an
    inside rendition's version (and every image made under it) survives the field's arrival."""
    data = spec.model_dump(mode="json")
    if spec.fit != "cover":
        data.pop("crop")
    return data


DEFAULT_CONFIG = EngineConfig()
