"""Sizes made on demand: the URL grammar, the allowed set, and the key each size is stored at.

Every size lives under one folder, ``sizes/``, with the size in the file name::

    sizes/<id>-<version>-<w>w.<ext>              at most <w> wide, the image's own aspect
    sizes/<id>-<version>-<w>x<h>-<fit>.<ext>     in a <w> x <h> box: contain (all of it
                                                 inside) or cover (filled, then cut where
                                                 the config's crop says)

The path is the key under the public prefix, as for every rendition (CloudFront's
``OriginPath``), so a size once made is a plain S3 object from then on. Path segments only:
the CDN's cache policy forwards no query string. ``<version>`` is the image's content version
(processor/core/keys.py): a URL never changes meaning, and a new upload or config gets new
keys. One folder for every size keeps erasing simple: ``sizes/<id>`` is the prefix of every
size of one image, whatever sizes the config allowed at the time.

Only the allowed set is ever made (``OnDemandConfig``): widths (and box sides) from one list
of steps, the fits the engine has, the formats of the encoder table; one spelling per size
(no leading zeros), so nobody can fill the bucket with variants. Anything else is refused
here, before a record or a byte is read. Pure: no AWS, no libvips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from processor.core.config import OutputFormat, Quality, RenditionSpec
from processor.core.encoders import ENCODERS, encoder
from processor.core.errors import NoSuchRendition, SizeNotAllowed
from processor.core.keys import EXTENSIONS, ID_LENGTH

FOLDER = "sizes"
# The fits a box may ask for, and what the engine calls them (core/config.py Fit).
FITS: dict[str, Literal["inside", "cover"]] = {"contain": "inside", "cover": "cover"}
# A width alone leaves the height to the image's aspect: the engine's largest box side.
UNBOUNDED = 16384
FORMAT_OF_EXTENSION = {ext: fmt for fmt, ext in EXTENSIONS.items()}

_PATH = re.compile(
    rf"^{FOLDER}/(?P<id>[a-z2-7]{{{ID_LENGTH}}})-(?P<version>[0-9a-f]{{10}})-"
    r"(?:(?P<w>[0-9]{1,5})w|(?P<bw>[0-9]{1,5})x(?P<bh>[0-9]{1,5})-(?P<fit>[a-z]{1,16}))"
    r"\.(?P<ext>[a-z0-9]{1,8})$"
)

DEFAULT_WIDTHS = (160, 320, 480, 640, 768, 1024, 1280, 1536, 2048)


class OnDemandConfig(BaseModel):
    """What may be made on demand (IMGPIPE_ON_DEMAND, JSON; docs/sizes.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The steps: every width, and every side of a box, is one of these (pixels).
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    formats: tuple[OutputFormat, ...] = ("jpeg", "png", "webp", "avif")
    fits: tuple[Literal["contain", "cover"], ...] = ("contain", "cover")
    # What a cover box keeps (libvips' smartcrop), as for the eager renditions.
    crop: Literal["centre", "attention", "entropy"] = "attention"
    quality: Quality = Quality()
    # Sizes one image may have made on demand, failed tries included: the bucket holds at
    # most this many files per image beyond its eager renditions.
    max_per_image: int = Field(48, ge=0, le=1000)
    # Sizes one caller (a viewer address) may have made per minute, per function instance.
    max_per_caller_minute: int = Field(60, ge=0)

    @field_validator("widths")
    @classmethod
    def _widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 1 or w > UNBOUNDED for w in v):
            raise ValueError(f"every width is 1..{UNBOUNDED} pixels, got {v}")
        return tuple(sorted(set(v)))

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: tuple[OutputFormat, ...]) -> tuple[OutputFormat, ...]:
        for fmt in v:
            encoder(fmt)  # a format without an encoder entry is refused by name
        return v


@dataclass(frozen=True)
class Size:
    """One allowed size of one image's content version."""

    image_id: str
    version: str  # the image's content version
    width: int  # box width, pixels
    height: int | None  # box height; None: a width alone
    fit: Literal["contain", "cover"]
    format: str  # the encoder table's name

    @property
    def name(self) -> str:
        """The rendition's name in the record: ``w640``, ``s640x360-cover``."""
        if self.height is None:
            return f"w{self.width}"
        return f"s{self.width}x{self.height}-{self.fit}"

    @property
    def key(self) -> str:
        """The key under the public prefix, which is also the CDN path (without the '/')."""
        if self.height is None:
            shape = f"{self.width}w"
        else:
            shape = f"{self.width}x{self.height}-{self.fit}"
        return f"{FOLDER}/{self.image_id}-{self.version}-{shape}.{EXTENSIONS[self.format]}"

    def spec(self, config: OnDemandConfig) -> RenditionSpec:
        """The rendition the engine makes for this size (core/config.py)."""
        return RenditionSpec(
            name=self.name,
            folder=FOLDER,
            width=self.width,
            height=self.height or UNBOUNDED,
            fit=FITS[self.fit],
            crop=config.crop,
            formats=(self.format,),
            quality=config.quality,
        )


def parse(path: str, config: OnDemandConfig) -> Size:
    """The size a CDN path asks for; NoSuchRendition when it is no size path at all,
    SizeNotAllowed when it is one outside the allowed set."""
    relative = path.lstrip("/")
    match = _PATH.match(relative)
    if match is None:
        raise NoSuchRendition(f"no such rendition: {_shown(relative)}")
    ext = match["ext"]
    fmt = FORMAT_OF_EXTENSION.get(ext)
    if fmt is None or fmt not in config.formats:
        allowed = ", ".join(EXTENSIONS[f] for f in config.formats)
        raise SizeNotAllowed(f"format .{ext} is not made on demand; allowed: {allowed}")
    if match["w"] is not None:
        width, height, fit = _step(match["w"], config), None, "contain"
    else:
        width, height = _step(match["bw"], config), _step(match["bh"], config)
        fit = match["fit"]
        if fit not in config.fits:
            raise SizeNotAllowed(f"fit {fit!r} is not made; allowed: {', '.join(config.fits)}")
    return Size(match["id"], match["version"], width, height, fit, fmt)  # type: ignore[arg-type]


def _step(text: str, config: OnDemandConfig) -> int:
    value = int(text)
    if str(value) != text or value not in config.widths:
        steps = ", ".join(str(w) for w in config.widths)
        raise SizeNotAllowed(f"{text} px is not an allowed size; allowed: {steps}")
    return value


def _shown(path: str) -> str:
    return path if len(path) <= 120 else path[:120] + "..."


def widths_for(image_width: int, config: OnDemandConfig) -> list[int]:
    """The allowed widths worth asking for an image this wide: every step below its width,
    and the first step at or above it (which is the image at its own size: never upscaled)."""
    below = [w for w in config.widths if w < image_width]
    above = [w for w in config.widths if w >= image_width][:1]
    return below + above


def on_demand_formats(has_alpha: bool, config: OnDemandConfig) -> list[str]:
    """The formats this image may be asked for: a format that cannot carry its alpha
    (JPEG) is not offered, since its key would name one format and hold another."""
    return [f for f in config.formats if not (has_alpha and ENCODERS[f].with_alpha)]
