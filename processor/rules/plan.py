"""The pure plan: from header facts and the config, decide everything before any pixel.

No libvips here: this module runs (and is tested) without decoding anything. The engine's
steps (processor/imaging/) turn a Plan into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.core import calibration
from processor.core.config import (
    Crop,
    EngineConfig,
    Limits,
    OutputFormat,
    RenditionSpec,
    check_bytes,
)
from processor.core.encoders import ENCODERS, Encoder, encoder
from processor.core.errors import ImageTooCostly, ImageTooLarge, TooManyFrames, TooManyPixels
from processor.rules import motion
from processor.rules.cost import (
    Cost,
    decoded_whole,
    encoder_bytes,
    estimate,
    estimate_motion,
    human_bytes,
    score_bytes,
)
from processor.rules.header import Header
from processor.rules.motion import Motion

# Output formats whose files can carry an alpha channel.
ALPHA_FORMATS = frozenset(name for name, e in ENCODERS.items() if e.alpha)


@dataclass(frozen=True)
class Encode:
    format: OutputFormat
    quality: int  # the table's quality setting (PNG: zlib compression level)
    effort: int = 0  # the table's effort setting; 0 where the format has none
    animated: bool = False  # every frame of an animation, not the still poster
    # The score an ``auto`` rendition's quality is searched for (processor/imaging/tune.py),
    # from ``quality``, the calibrated setting; None: ``quality`` is used as is.
    target: float | None = None


@dataclass(frozen=True)
class RenditionPlan:
    name: str
    folder: str
    width: int  # final output size
    height: int
    crop: bool  # fit=cover: fill the box, cut the overflow (where `crop_mode` says)
    encodes: tuple[Encode, ...]
    crop_mode: Crop = "attention"


@dataclass(frozen=True)
class Plan:
    # One decode, at the size the largest rendition needs (never above the source).
    decode_width: int
    decode_height: int
    # Colour-manage through the embedded (or CMYK fallback) profile into sRGB.
    colour_manage: bool
    renditions: tuple[RenditionPlan, ...]
    cost: Cost  # estimated from the header, checked against the per-image memory budget
    # An animated upload's frames: kept (encodes marked `animated`), or why not. None: a still.
    motion: Motion | None = None
    # Whether the still renditions are scored: scoring is on and its memory fits the budget.
    scored: bool = False

    @property
    def animated(self) -> bool:
        return self.motion is not None and self.motion.kept


def check_limits(header: Header, limits: Limits) -> None:
    """Refuse from the header, before a single pixel is decoded."""
    check_bytes(header.input_bytes, limits.max_input_bytes)
    pixels = header.width * header.height
    whole, how = decoded_whole(header)
    limit = limits.max_pixels_whole if whole else limits.max_pixels
    if pixels > limit:
        why = f"{how}, so its limit is lower: " if whole and limit < limits.max_pixels else ""
        raise TooManyPixels(
            f"the image is {header.width}x{header.height} ({pixels / 1e6:,.1f} megapixels); "
            f"{why}the limit is {limit / 1e6:,.1f} megapixels"
        )
    if max(header.width, header.height) > limits.max_dimension:
        raise ImageTooLarge(
            f"the image is {header.width}x{header.height} pixels; no side may exceed "
            f"{limits.max_dimension:,} pixels"
        )
    if header.frames > limits.max_frames:
        raise TooManyFrames(
            f"the image has {header.frames:,} frames; the limit is {limits.max_frames:,}"
        )


def _fits(cost: Cost, limits: Limits) -> bool:
    return limits.max_image_memory is None or cost.memory_bytes <= limits.max_image_memory


def check_cost(header: Header, cost: Cost, limits: Limits) -> None:
    """Refuse what would need more memory than this function allows one image."""
    budget = limits.max_image_memory
    if budget is not None and not _fits(cost, limits):
        raise ImageTooCostly(
            f"{cost.how}: {header.width}x{header.height} needs about "
            f"{human_bytes(cost.memory_bytes)}; this function allows "
            f"{human_bytes(budget)} per image"
        )


def fit_size(src_w: int, src_h: int, box_w: int, box_h: int, cover: bool) -> tuple[int, int]:
    """Output size for a box, keeping the aspect ratio, never upscaling, never zero.

    inside: the whole image fits in the box. cover: the image fills the box (then is cropped
    to it), so the result is min(box, scaled) on each side.
    """
    sx, sy = box_w / src_w, box_h / src_h
    scale = min(1.0, max(sx, sy) if cover else min(sx, sy))
    w = max(1, round(src_w * scale))
    h = max(1, round(src_h * scale))
    return min(w, box_w), min(h, box_h)


def _decode_scale(src_w: int, src_h: int, spec: RenditionSpec) -> float:
    sx, sy = spec.width / src_w, spec.height / src_h
    return min(1.0, max(sx, sy) if spec.fit == "cover" else min(sx, sy))


def quality_setting(spec: RenditionSpec, entry: Encoder, long_side: int) -> int:
    """The rendition's own setting for the format when it sets one; for a lossy format left
    unset, the setting the calibration table says meets the rendition's target at this size."""
    s = entry.quality
    value = getattr(spec.quality, s.field)
    if value is not None:
        return int(value)
    return calibration.quality_for(entry.format, spec.target, long_side, s.low, s.high)


def resolve_formats(
    spec: RenditionSpec,
    has_alpha: bool,
    animated: bool = False,
    size: tuple[int, int] | None = None,
) -> tuple[Encode, ...]:
    """Each format as the encoder table says: an image with alpha gets the entry's
    ``with_alpha`` format ('jpeg' becomes PNG); duplicates collapse. ``animated``: the upload's
    frames are kept, so formats that carry animation encode them (unless the rendition says
    ``animated: false``). ``size``: the output's, which the calibrated quality depends on (the
    rendition's box when not given)."""
    q = spec.quality
    long_side = max(size) if size else max(spec.width, spec.height)
    out: list[Encode] = []
    for fmt in spec.formats:
        entry = encoder(fmt)
        if has_alpha and entry.with_alpha:
            entry = encoder(entry.with_alpha)
        if any(e.format == entry.format for e in out):
            continue
        moving = animated and spec.animated and entry.animation
        searched = spec.auto and entry.calibrated and getattr(q, entry.quality.field) is None
        out.append(
            Encode(
                format=entry.format,  # type: ignore[arg-type]  # the table's keys are OutputFormat
                quality=quality_setting(spec, entry, long_side),
                effort=getattr(q, entry.effort.field) if entry.effort else 0,
                animated=moving,
                target=spec.target if searched and not moving else None,
            )
        )
    return tuple(out)


def make_plan(header: Header, config: EngineConfig) -> Plan:
    check_limits(header, config.limits)
    src_w, src_h = header.oriented_size
    scale = max(_decode_scale(src_w, src_h, spec) for spec in config.renditions)
    # The same rounding as fit_size, so the largest rendition is the decoded image itself.
    decode_w = max(1, round(src_w * scale))
    decode_h = max(1, round(src_h * scale))
    sizes = [
        fit_size(src_w, src_h, spec.width, spec.height, spec.fit == "cover")
        for spec in config.renditions
    ]
    still = _renditions(config, sizes, header.has_alpha, animated=False)
    encoders = encoder_bytes((e.format, r.width * r.height) for r in still for e in r.encodes)
    cost = estimate(header, decode_w, decode_h, encoders=encoders)
    check_cost(header, cost, config.limits)  # even the still must fit, or the image is refused
    scored = False
    if config.scoring.enabled:  # after the encodes: the larger of the two working sets
        largest = max((r.width * r.height for r in still), default=0)
        with_scores = max(encoders, score_bytes(min(largest, config.scoring.max_pixels)))
        scoring = estimate(header, decode_w, decode_h, encoders=with_scores)
        # A score is a report on the renditions, never a reason to refuse the image: one that
        # would not fit the memory budget is left out (its renditions' scores stay null).
        if _fits(scoring, config.limits):
            cost, encoders, scored = scoring, with_scores, True
    renditions, kept = still, None
    if header.animation:
        animated = _renditions(config, sizes, header.has_alpha, animated=True)
        moving = [r.width * r.height for r in animated if any(e.animated for e in r.encodes)]
        kept = estimate_motion(header, decode_w, decode_h, moving, encoders=encoders)
        frames = motion.decide(header, config, kept, carried=bool(moving))
        if frames is not None and frames.kept:
            renditions, cost = animated, kept
    else:
        frames = None
    return Plan(
        decode_width=decode_w,
        decode_height=decode_h,
        # Untagged and sRGB-tagged pixels are sRGB already: a transform would cost CPU (a third
        # more on a 25 MP photo) and change nothing.
        colour_manage=(header.has_icc and not header.icc_is_srgb)
        or header.interpretation == "cmyk",
        renditions=renditions,
        cost=cost,
        motion=frames,
        scored=scored,
    )


def _renditions(
    config: EngineConfig, sizes: list[tuple[int, int]], has_alpha: bool, *, animated: bool
) -> tuple[RenditionPlan, ...]:
    return tuple(
        RenditionPlan(
            name=spec.name,
            folder=spec.folder,
            width=w,
            height=h,
            crop=spec.fit == "cover",
            encodes=resolve_formats(spec, has_alpha, animated, (w, h)),
            crop_mode=spec.crop,
        )
        for spec, (w, h) in zip(config.renditions, sizes, strict=True)
    )
