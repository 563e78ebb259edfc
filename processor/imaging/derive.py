"""Step 6, derive: each rendition's pixels from the decoded ones (never upscaled, exact size).

A still rendition comes from the decoded still, or from an animation's poster frame; an
animated rendition resizes every frame the same way, and a cover rendition cuts the same box
out of every frame (chosen on the poster frame, where ``crop_mode`` asks for a smart crop).
"""

from __future__ import annotations

import pyvips

from processor.imaging.budget import UNLIMITED, TimeBudget
from processor.imaging.frames import fit, stack
from processor.imaging.pixels import Frames, Held, Pixels, hold
from processor.rules.plan import RenditionPlan


def derive(pixels: Pixels, r: RenditionPlan, budget: TimeBudget = UNLIMITED) -> Pixels:
    if isinstance(pixels, Frames):
        return derive_frames(pixels, r, budget)
    return derive_still(pixels, r, budget)


def derive_still(decoded: Held, r: RenditionPlan, budget: TimeBudget = UNLIMITED) -> Held:
    """One still rendition from the decoded image."""
    image = decoded.image
    if (image.width, image.height) == (r.width, r.height):
        return decoded
    if r.crop:
        return hold(budget.watch(cover_crop(cover(image, r), r)))
    return hold(budget.watch(fit(image, r.width, r.height)))


def derive_frames(decoded: Frames, r: RenditionPlan, budget: TimeBudget = UNLIMITED) -> Frames:
    """One animated rendition: every frame resized (and cropped) the same way."""
    if decoded.size == (r.width, r.height):
        return decoded
    if r.crop:
        # The box is chosen once, on the poster frame, and cut out of every frame.
        left, top = crop_window(cover(decoded.frame(decoded.poster), r), r)

        def each(frame: pyvips.Image) -> pyvips.Image:
            return cover(frame, r).crop(left, top, r.width, r.height)
    else:

        def each(frame: pyvips.Image) -> pyvips.Image:
            return fit(frame, r.width, r.height)

    frames = (each(decoded.frame(i)) for i in range(decoded.count))
    bands = decoded.held.image.bands
    return stack(
        frames,
        decoded.count,
        (r.width, r.height),
        bands,
        decoded.delays_ms,
        decoded.loop,
        budget,
        decoded.poster,
    )


def cover(image: pyvips.Image, r: RenditionPlan) -> pyvips.Image:
    """The image scaled to just cover the rendition's box (never upscaled)."""
    scale = max(r.width / image.width, r.height / image.height)
    if scale >= 1:
        return image
    w = max(r.width, round(image.width * scale))
    h = max(r.height, round(image.height * scale))
    return image.thumbnail_image(w, height=h, size="force")


def cover_crop(image: pyvips.Image, r: RenditionPlan) -> pyvips.Image:
    """Cut a cover rendition's box out of the scaled image, keeping what `crop_mode` says."""
    if (image.width, image.height) == (r.width, r.height):
        return image
    if r.crop_mode == "centre":
        left = (image.width - r.width) // 2
        top = (image.height - r.height) // 2
        return image.crop(left, top, r.width, r.height)
    # The image is already scaled to just cover the box: smartcrop only slides the window.
    return image.smartcrop(r.width, r.height, interesting=r.crop_mode)


def crop_window(image: pyvips.Image, r: RenditionPlan) -> tuple[int, int]:
    """Where ``cover_crop`` cuts its box out of ``image``: (left, top)."""
    if (image.width, image.height) == (r.width, r.height):
        return 0, 0
    if r.crop_mode == "centre":
        return (image.width - r.width) // 2, (image.height - r.height) // 2
    box = image.smartcrop(r.width, r.height, interesting=r.crop_mode)
    return -box.xoffset, -box.yoffset  # libvips notes the cut as the box's offsets
