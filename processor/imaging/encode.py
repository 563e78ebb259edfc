"""Step 8, encode: one save function per output format, every metadata block stripped.

``SAVERS`` has one entry per entry of the encoder table (processor/core/encoders.py), checked
at engine start by ``check_savers``: a format without a save function (or a save function
without a table entry, or a format whose animation support the two disagree on) stops the
engine before its first image, never writes another format's bytes. Adding a format is a
table entry plus a save function here (docs/development.md).

Each save function takes the image to write (a copy of its own, watched by the time budget:
renditions are shared by encodes in other threads), the held pixels it came from (for an
encoder that reads the buffer directly) and the plan's ``Encode`` (quality, effort). EXIF,
XMP, IPTC and ICC are stripped from every file (``keep="none"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pyvips

from processor.core.encoders import ENCODERS
from processor.imaging import webp
from processor.imaging.budget import UNLIMITED, TimeBudget
from processor.imaging.describe import flatten
from processor.imaging.pixels import Frames, Held, Pixels
from processor.imaging.tune import tune
from processor.rules.plan import Encode

StillSave = Callable[[pyvips.Image, Held, Encode], bytes]
AnimationSave = Callable[[pyvips.Image, Encode], bytes]
Plays = Callable[[bytes], bool]  # the file written is an animation (not collapsed to a still)


# What each JPEG effort (the encoder table's ``jpeg_effort``) adds to libvips' jpegsave. The
# bundled libvips links mozjpeg, whose settings these are; each is still an ordinary JPEG
# (baseline or progressive, Huffman-coded) that libjpeg-turbo, Pillow and browsers decode.
JPEG_EFFORT: dict[int, dict[str, object]] = {
    0: {"optimize_coding": True},
    1: {"optimize_coding": True, "interlace": True},
    2: {
        "optimize_coding": True,
        "interlace": True,
        "trellis_quant": True,
        "overshoot_deringing": True,
        "optimize_scans": True,
        # ImageMagick's table (Nicolas Robidoux's): tuned for perceptual quality at q 70-90.
        "quant_table": 3,
    },
}


def save_jpeg(image: pyvips.Image, _held: Held, enc: Encode) -> bytes:
    data: bytes = image.jpegsave_buffer(Q=enc.quality, keep="none", **JPEG_EFFORT[enc.effort])
    return data


def save_png(image: pyvips.Image, _held: Held, enc: Encode) -> bytes:
    data: bytes = image.pngsave_buffer(compression=enc.quality, keep="none")
    return data


def save_webp(image: pyvips.Image, held: Held, enc: Encode) -> bytes:
    if image.format == "uchar" and webp.available(image.bands):
        # The same bytes libvips' webpsave writes, by the faster libwebp (imaging/webp.py).
        return webp.encode(
            held.data,
            image.width,
            image.height,
            image.bands,
            quality=enc.quality,
            effort=enc.effort,
        )
    data: bytes = image.webpsave_buffer(Q=enc.quality, effort=enc.effort, keep="none")
    return data


def save_webp_animation(image: pyvips.Image, enc: Encode) -> bytes:
    """An animated WebP through libvips' ``webpsave`` (libwebp's animation encoder): the
    frames, delays and loop from the roll's metadata, each frame a keyframe only where libwebp
    finds it smaller. Pillow's libwebp takes about 0.7x the CPU but writes about 3% more bytes
    on the animated samples, and libvips stops at the time budget between frames where one
    call into Pillow cannot be stopped (`python -m benchmarks.motion`, docs/benchmarks.md)."""
    data: bytes = image.webpsave_buffer(Q=enc.quality, effort=enc.effort, keep="none")
    return with_alpha_flag(data) if image.hasalpha() else data


# An animated WebP starts with RIFF (12 bytes), then VP8X: its 4-byte tag, its size, its flags.
_VP8X_FLAGS = 20
_ALPHA_FLAG = 0x10
_ANIMATION_FLAG = 0x02


def webp_plays(data: bytes) -> bool:
    """libwebp writes a still when every frame came out alike (it merges a frame into the one
    before when they match): only a VP8X file with the animation flag plays."""
    return data[12:16] == b"VP8X" and bool(data[_VP8X_FLAGS] & _ANIMATION_FLAG)


def with_alpha_flag(data: bytes) -> bytes:
    """The file saying it has alpha. libwebp crops a frame to the part that is not
    transparent, and when every kept part is opaque it leaves the alpha flag unset: decoders
    that trust the flag (Pillow's) then show the transparent canvas around the first frame as
    black. The canvas is transparent, so the flag is the truth."""
    if data[12:16] != b"VP8X" or data[_VP8X_FLAGS] & _ALPHA_FLAG:
        return data
    return data[:_VP8X_FLAGS] + bytes([data[_VP8X_FLAGS] | _ALPHA_FLAG]) + data[_VP8X_FLAGS + 1 :]


def save_avif(image: pyvips.Image, _held: Held, enc: Encode) -> bytes:
    data: bytes = image.heifsave_buffer(
        Q=enc.quality, compression="av1", effort=enc.effort, keep="none", bitdepth=8
    )
    return data


@dataclass(frozen=True)
class Saver:
    still: StillSave
    animation: AnimationSave | None = None  # for formats that carry animation
    plays: Plays | None = None  # whether what ``animation`` wrote is one


SAVERS: dict[str, Saver] = {
    "jpeg": Saver(save_jpeg),
    "png": Saver(save_png),
    "webp": Saver(save_webp, save_webp_animation, webp_plays),
    "avif": Saver(save_avif),
}


@dataclass(frozen=True)
class Encoded:
    data: bytes
    animated: bool  # the file plays as an animation
    quality: int | None = None  # the quality setting written, when searched (``auto``)
    trials: int = 0  # trial encodes the search made


def check_savers(savers: dict[str, Saver] = SAVERS) -> None:
    """Every encoder table entry has a save function, and every save function an entry, with
    the same animation support. Raises RuntimeError naming what is missing."""
    missing = sorted(set(ENCODERS) - set(savers))
    extra = sorted(set(savers) - set(ENCODERS))
    if missing or extra:
        raise RuntimeError(
            f"the encoder table and the save functions disagree: no save function for "
            f"{missing or 'none'}, no table entry for {extra or 'none'}"
        )
    for name, entry in ENCODERS.items():
        saver = savers[name]
        if entry.animation != (saver.animation is not None and saver.plays is not None):
            raise RuntimeError(f"{name}: the table and its save function disagree on animation")


def encode(pixels: Pixels, enc: Encode, budget: TimeBudget = UNLIMITED) -> Encoded:
    """One file: ``pixels`` (a still, or every frame for an animated encode) as ``enc`` says."""
    saver = SAVERS[enc.format]
    entry = ENCODERS[enc.format]
    # Encoders that cannot be stopped midway (libwebp through Pillow, libaom once the pixels
    # are ready) are checked before they start.
    budget.check(f"encoding {enc.format.upper()}")
    if isinstance(pixels, Frames):
        if saver.animation is None or saver.plays is None or not enc.animated:
            raise ValueError(f"{enc.format} encodes no animation here")
        image = budget.watch(pixels.animation())
        data = saver.animation(image if entry.alpha else flatten(image), enc)
        return Encoded(data, saver.plays(data))
    # A copy of its own: renditions are shared by encodes running in other threads.
    image = budget.watch(pixels.image.copy())
    image = image if entry.alpha else flatten(image)
    if enc.target is None:
        return Encoded(saver.still(image, pixels, enc), False)
    found = tune(image, enc, enc.target, saver.still, budget)
    enc = replace(enc, quality=found.quality)
    budget.check(f"encoding {enc.format.upper()}")
    return Encoded(saver.still(image, pixels, enc), False, enc.quality, found.trials)
