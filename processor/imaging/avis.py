"""AVIF image sequences (``avis``), frame by frame, through Pillow's libavif.

libvips' HEIF loader reads a sequence's still primary item only; Pillow 13 wraps libavif
(1.4 here), which decodes the track. Every frame of an AVIF sequence is whole (no disposal
or blending to do: a decoder shows each as it is). libavif converts 10- and 12-bit frames
to 8 bits. It reports the container's rotation and mirror (irot, imir) as an EXIF
orientation and leaves the pixels as stored; the engine turns them upright. No pyvips here:
the engine wraps the pixels. Pillow is imported on first use, not at import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processor.imaging.pillow import image_module

# Pillow's EXIF tag for the orientation.
_ORIENTATION = 0x0112


def available() -> bool:
    return image_module("avif") is not None


@dataclass(frozen=True)
class Track:
    width: int  # as stored, before the orientation
    height: int
    has_alpha: bool
    orientation: int  # EXIF-style, from irot/imir
    frames: int


@dataclass(frozen=True)
class Frame:
    data: bytes  # width x height x bands, 8-bit, interleaved
    bands: int  # 3 or 4
    icc: bytes | None


def _open(path: Path) -> Any:
    pillow = image_module("avif")
    if pillow is None:
        raise ValueError("no AVIF decoder in Pillow")
    return pillow.open(path, formats=["AVIF"])


def probe(path: Path) -> Track:
    """The track's facts from libavif's parse: no frame is decoded."""
    with _open(path) as image:
        orientation = image.getexif().get(_ORIENTATION, 1)
        return Track(
            width=image.width,
            height=image.height,
            has_alpha=image.mode == "RGBA",
            orientation=orientation if 1 <= orientation <= 8 else 1,
            frames=getattr(image, "n_frames", 1),
        )


def frames(path: Path, count: int) -> Iterator[Frame]:
    """The first ``count`` frames, in order, each decoded once."""
    with _open(path) as image:
        icc = image.info.get("icc_profile") or None
        bands = 4 if image.mode == "RGBA" else 3
        for index in range(count):
            image.seek(index)
            yield Frame(image.tobytes(), bands, icc)
