"""An animation's frames: read as a browser composes them, then each resized the same way.

Who composes the frames (disposal, blending, offsets), per format, checked against
independent decodes in tests/processor/imaging/test_motion.py (docs/engine.md, "Animations"):

- GIF: libvips' ``gifload`` (libnsgif), ``n=-1``. It matches Pillow frame for frame, and
  browsers too, but for two cases in a GIF without a transparent colour: a frame disposed
  to the background, which libnsgif fills with the GIF's background colour (as the GIF
  specification says), and a first frame smaller than the screen, whose rest libnsgif
  paints black. Browsers show both transparent, and so do these frames: their alpha
  follows the frames' rectangles and disposal (processor/core/gif.py).
- WebP: libvips' ``webpload`` (libwebp's demuxer and its blending), ``n=-1``: the same pixels
  as Pillow's libwebp decoder.
- APNG: composed here from its frames (processor/imaging/apng.py).
- AVIF sequences: libavif through Pillow (processor/imaging/avis.py): each frame is whole;
  nclx primaries and HDR transfers converted as for a still AVIF.

Every frame is resized to the decode size on its own (a resize of the whole roll would blend
the last rows of one frame into the first rows of the next), colour-managed, made 8-bit
sRGB and written into one buffer, one frame at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyvips

from processor.core import apng as apng_chunks
from processor.core import gif
from processor.core import heif as heif_boxes
from processor.imaging import apng, avis, cms, hdr
from processor.imaging.budget import TimeBudget
from processor.imaging.pixels import Frames, Held, to_srgb
from processor.rules.header import Header
from processor.rules.metadata import nclx_to_srgb_matrix
from processor.rules.plan import Plan


def fit(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """One frame at exactly ``width`` x ``height`` (alpha premultiplied while resizing)."""
    if (image.width, image.height) == (width, height):
        return image
    return image.thumbnail_image(width, height=height, size="force")


def stack(
    frames: Iterator[pyvips.Image],
    count: int,
    size: tuple[int, int],
    bands: int,
    delays_ms: tuple[int, ...],
    loop: int,
    budget: TimeBudget,
    poster: int = 0,
) -> Frames:
    """Compute each frame in turn into its place in one buffer: the roll is held once, and
    a frame's source pixels are freed as soon as it is written."""
    width, height = size
    stride = width * height * bands
    buffer = bytearray(stride * count)
    written = 0
    resolution = (1.0, 1.0)  # pixels per mm, as libvips keeps it (JPEG and PNG write it)
    for index, frame in enumerate(frames):
        if index == count:
            break
        if index == 0:
            resolution = (frame.xres, frame.yres)
        pixels = frame if frame.bands == bands else _bands(frame, bands)
        buffer[index * stride : (index + 1) * stride] = budget.watch(pixels).write_to_memory()
        written += 1
    if written != count:
        raise ValueError(f"{written} frames decoded of {count}")
    held = Held.over(buffer, width, height * count, bands, "uchar", "srgb", *resolution)
    return Frames(held, height, delays_ms, loop, poster)


def _bands(image: pyvips.Image, bands: int) -> pyvips.Image:
    if image.bands > bands:
        return image.flatten(background=[255, 255, 255])
    return image.bandjoin(255)


def _upright(image: pyvips.Image, orientation: int) -> pyvips.Image:
    if orientation == 1:
        return image
    turned = image.copy()
    turned.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return turned.autorot()


# --- the readers: full-size frames, upright, in order ------------------------------------------

Reader = Callable[[Path, Header, Plan], Iterator[pyvips.Image]]


def _vips_frames(path: Path, header: Header, plan: Plan) -> Iterator[pyvips.Image]:
    """GIF and WebP: libvips composes the frames into one lazily decoded roll."""
    load = pyvips.Image.gifload if header.format == "gif" else pyvips.Image.webpload
    roll = load(str(path), n=-1, access="sequential", fail_on="error")
    page = header.height
    unpainted = _unpainted_canvas(path, header, roll.bands)
    for index in range(header.frames):
        frame = roll.crop(0, index * page, header.width, page)
        if unpainted is not None:
            frame = unpainted(frame, index)
        if plan.colour_manage and "icc-profile-data" in frame.get_fields():
            frame = frame.icc_transform("srgb", embedded=True, intent="relative")
        yield _upright(frame, header.orientation)


def _unpainted_canvas(
    path: Path, header: Header, bands: int
) -> Callable[[pyvips.Image, int], pyvips.Image] | None:
    """A GIF with no transparent colour where part of the screen shows no frame (the first
    frame does not cover it, or a frame is cleared to the background): libnsgif paints that
    part black or in the GIF's background colour, browsers show it transparent. The alpha of
    each frame follows the frames' rectangles and their disposal."""
    if header.format != "gif" or bands != 3 or not header.has_alpha:
        return None
    rects = gif.rectangles(path, limit=header.frames)
    if not gif.clears(rects):
        return None
    shown = [pyvips.Image.black(header.width, header.height)]  # before frame i is drawn

    def with_alpha(frame: pyvips.Image, index: int) -> pyvips.Image:
        before = shown[0]
        mask = before
        if index < len(rects):
            r = rects[index]
            mask = before.draw_rect(255, r.left, r.top, r.width, r.height, fill=True)
            if r.disposal == 2:
                after = mask.draw_rect(0, r.left, r.top, r.width, r.height, fill=True)
            elif r.disposal == 3:
                after = before
            else:
                after = mask
            shown[0] = after.copy_memory()
        return frame.bandjoin(mask.cast("uchar")).copy(interpretation="srgb")

    return with_alpha


def _apng_frames(path: Path, header: Header, plan: Plan) -> Iterator[pyvips.Image]:
    animation = apng_chunks.read(path, header.frames)
    if animation is None:
        raise ValueError("the APNG's animation chunks are gone")
    yield from apng.compose(path, animation, header.frames, colour_manage=plan.colour_manage)


def _avis_frames(path: Path, header: Header, plan: Plan) -> Iterator[pyvips.Image]:
    # libavif gives 8-bit codes in the file's own primaries and transfer: an ICC profile,
    # or nclx code points (Display P3, or HDR PQ/HLG), converted as a still AVIF's are.
    # (The plan's ``colour_manage`` is about ICC profiles; nclx is read from the boxes.)
    nclx = heif_boxes.nclx(path)
    matrix = nclx_to_srgb_matrix(nclx)
    for frame in avis.frames(path, header.frames):
        image = pyvips.Image.new_from_memory(
            frame.data, header.width, header.height, frame.bands, "uchar"
        ).copy(interpretation="srgb")
        if frame.icc:  # a profile says it all (the plan skips sRGB's own)
            if plan.colour_manage:
                image.set_type(pyvips.GValue.blob_type, "icc-profile-data", frame.icc)
                image = image.icc_transform("srgb", embedded=True, intent="relative")
        elif nclx is not None and hdr.is_hdr(nclx):
            image = hdr.to_sdr(image, nclx, matrix)
        elif matrix is not None:
            image = cms.primaries_to_srgb(image, matrix)
        yield _upright(image, header.orientation)


READERS: dict[str, Reader] = {
    "gif": _vips_frames,
    "webp": _vips_frames,
    "png": _apng_frames,
    "avif": _avis_frames,
}


def read(path: Path, header: Header, plan: Plan, budget: TimeBudget) -> Frames:
    """Every frame at the plan's decode size, held once."""
    motion = plan.motion
    if motion is None:
        raise ValueError("a still has no frames")
    count = header.frames
    size = (plan.decode_width, plan.decode_height)
    bands = 4 if header.has_alpha else 3

    def resized() -> Iterator[pyvips.Image]:
        for frame in READERS[header.format](path, header, plan):
            yield to_srgb(fit(frame, *size))

    return stack(
        resized(), count, size, bands, motion.delays_ms, motion.loop, budget, motion.poster
    )


def poster(path: Path, header: Header, plan: Plan, index: int) -> pyvips.Image:
    """Frame ``index`` alone at the decode size (the frames before it composed, not kept)."""
    for i, frame in enumerate(READERS[header.format](path, header, plan)):
        if i == index:
            return to_srgb(fit(frame, plan.decode_width, plan.decode_height))
    raise ValueError(f"the animation has no frame {index}")
