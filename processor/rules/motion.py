"""Animated uploads: whether the frames go through the pipeline, decided from the header alone.

An animation is kept (its frames, delays and loop, in the formats that carry animation) unless
a limit or the config says otherwise; then its renditions are stills of the poster frame, and
the record says why with one of the stable codes below. Never a failure: a still is always
made. Pure: no pixels, no libvips.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from processor.core.config import EngineConfig
from processor.core.record import StillReason
from processor.rules.cost import Cost, human_bytes
from processor.rules.header import Header

# Why an animation was kept still (StillReason.code): stable, documented in docs/engine.md.
TURNED_OFF = "turned_off"  # no rendition keeps animation in a format that carries it
TOO_MANY_PIXELS = "too_many_pixels"  # frames x width x height over max_animation_pixels
TOO_LONG = "too_long"  # one loop plays longer than max_animation_ms
TOO_COSTLY = "too_costly"  # the cost model's memory for the frames is over the budget

# Browsers (Chromium, Firefox) play a frame delay of 10 ms or less as 100 ms, in GIF and WebP
# alike: "as fast as possible" ads would otherwise flash. The renditions carry the delay as
# played, so that every decoder plays them as browsers play the source.
FASTEST_MS = 10
PLAYED_INSTEAD_MS = 100


def played(delay_ms: int) -> int:
    return PLAYED_INSTEAD_MS if delay_ms <= FASTEST_MS else delay_ms


@dataclass(frozen=True)
class Motion:
    """What happens to an animated upload's frames."""

    frames: int
    delays_ms: tuple[int, ...]  # as played, one per frame
    loop: int  # plays of the animation, 0 = forever
    poster: int  # the frame the still renditions show
    still: StillReason | None  # why the frames are not kept; None: they are

    @property
    def kept(self) -> bool:
        return self.still is None

    @property
    def duration_ms(self) -> int | None:
        return sum(self.delays_ms) if self.delays_ms else None


def poster_frame(header: Header, config: EngineConfig) -> int:
    return min(config.poster_frame, max(0, header.frames - 1))


def decide(
    header: Header, config: EngineConfig, cost: Cost | None, *, carried: bool
) -> Motion | None:
    """The motion of an animated upload (None for a still). ``carried``: some rendition keeps
    animation in a format that carries it; ``cost``: the frames' estimated memory."""
    if not header.animation:
        return None
    delays = tuple(played(d) for d in header.delays_ms)
    motion = Motion(
        frames=header.frames,
        delays_ms=delays,
        loop=header.loop,
        poster=poster_frame(header, config),
        still=None,
    )
    still = _why_still(header, config, motion, cost, carried=carried)
    return motion if still is None else replace(motion, still=still)


def _why_still(
    header: Header, config: EngineConfig, motion: Motion, cost: Cost | None, *, carried: bool
) -> StillReason | None:
    limits = config.limits
    if not carried:
        return StillReason(
            code=TURNED_OFF,
            message="no rendition keeps animation in a format that carries it "
            "(the config's `animated` and `formats`)",
        )
    pixels = header.frames * header.width * header.height
    if pixels > limits.max_animation_pixels:
        return StillReason(
            code=TOO_MANY_PIXELS,
            message=f"{header.frames:,} frames of {header.width}x{header.height} are "
            f"{pixels / 1e6:,.1f} megapixels; animations are kept up to "
            f"{limits.max_animation_pixels / 1e6:,.1f}",
        )
    duration = motion.duration_ms
    if duration is not None and duration > limits.max_animation_ms:
        return StillReason(
            code=TOO_LONG,
            message=f"one loop plays {duration / 1000:,.1f} s; animations are kept up to "
            f"{limits.max_animation_ms / 1000:,.1f} s",
        )
    budget = limits.max_image_memory
    if cost is not None and budget is not None and cost.memory_bytes > budget:
        return StillReason(
            code=TOO_COSTLY,
            message=f"its {header.frames:,} frames need about {human_bytes(cost.memory_bytes)}"
            f"; this function allows {human_bytes(budget)} per image",
        )
    return None
