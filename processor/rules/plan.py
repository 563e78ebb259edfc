"""The pure plan: from header facts and the config, decide everything before any pixel.

No libvips here: this module runs (and is tested) without decoding anything. The executor in
engine.py turns a Plan into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.core.config import (
    Crop,
    EngineConfig,
    Limits,
    OutputFormat,
    RenditionSpec,
    check_bytes,
)
from processor.core.errors import ImageTooCostly, ImageTooLarge, TooManyFrames, TooManyPixels
from processor.core.formats import ALPHA_OUTPUTS
from processor.rules.cost import Cost, decoded_whole, estimate, human_bytes
from processor.rules.header import Header

# Output formats whose files can carry an alpha channel.
ALPHA_FORMATS = ALPHA_OUTPUTS


@dataclass(frozen=True)
class Encode:
    format: OutputFormat
    quality: int  # for png: zlib compression level
    effort: int = 0  # webp 0..6, avif 0..9; unused by jpeg and png


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


def check_cost(header: Header, cost: Cost, limits: Limits) -> None:
    """Refuse what would need more memory than this function allows one image."""
    budget = limits.max_image_memory
    if budget is not None and cost.memory_bytes > budget:
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


def resolve_formats(spec: RenditionSpec, has_alpha: bool) -> tuple[Encode, ...]:
    """'jpeg' becomes PNG when the image has alpha; duplicates collapse."""
    q = spec.quality
    out: list[Encode] = []
    for fmt in spec.formats:
        actual: OutputFormat = "png" if (fmt == "jpeg" and has_alpha) else fmt
        quality = {
            "jpeg": q.jpeg,
            "webp": q.webp,
            "avif": q.avif,
            "png": q.png_compression,
        }[actual]
        effort = {"webp": q.webp_effort, "avif": q.avif_effort}.get(actual, 0)
        if all(e.format != actual for e in out):
            out.append(Encode(actual, quality, effort))
    return tuple(out)


def make_plan(header: Header, config: EngineConfig) -> Plan:
    check_limits(header, config.limits)
    src_w, src_h = header.oriented_size
    scale = max(_decode_scale(src_w, src_h, spec) for spec in config.renditions)
    # The same rounding as fit_size, so the largest rendition is the decoded image itself.
    decode_w = max(1, round(src_w * scale))
    decode_h = max(1, round(src_h * scale))
    renditions = []
    for spec in config.renditions:
        cover = spec.fit == "cover"
        w, h = fit_size(src_w, src_h, spec.width, spec.height, cover)
        renditions.append(
            RenditionPlan(
                name=spec.name,
                folder=spec.folder,
                width=w,
                height=h,
                crop=cover,
                encodes=resolve_formats(spec, header.has_alpha),
                crop_mode=spec.crop,
            )
        )
    avif = [r.width * r.height for r in renditions if any(e.format == "avif" for e in r.encodes)]
    cost = estimate(header, decode_w, decode_h, avif_pixels=max(avif, default=0))
    check_cost(header, cost, config.limits)
    return Plan(
        decode_width=decode_w,
        decode_height=decode_h,
        # Untagged and sRGB-tagged pixels are sRGB already: a transform would cost CPU (a third
        # more on a 25 MP photo) and change nothing.
        colour_manage=(header.has_icc and not header.icc_is_srgb)
        or header.interpretation == "cmyk",
        renditions=tuple(renditions),
        cost=cost,
    )
