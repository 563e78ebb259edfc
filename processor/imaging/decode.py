"""Step 5, decode: the one decode, to the size the largest rendition needs, held in memory.

Still images: shrink-on-load to the decode size, upright, colour-managed, 8-bit sRGB, in one
buffer (``Held``). Who decodes what, fastest path first:

- HEVC HEIC: pi-heif (processor/imaging/heic.py), libvips takes the pixels from memory;
- JPEG, when a larger shrink-on-load than libvips' ``thumbnail`` picks is possible, or CMYK:
  ``decode_jpeg`` (Pillow's ``draft`` way; CMYK through processor/imaging/cms.py);
- an AVIF sequence kept still: libvips' ``heifload`` named explicitly (its loader guess does
  not know the ``avis`` brand), or its poster frame through processor/imaging/frames.py;
- everything else: libvips' ``thumbnail``.

Animations kept animated: every frame at the decode size, held once as ``Frames``
(processor/imaging/frames.py). An animation kept still: its poster frame only.

The decoders are chosen in ``decode``; a new decoder (another codec, a sample format) joins
there, and ``to_srgb`` (processor/imaging/pixels.py) is where every decoder's pixels become
8-bit sRGB.
"""

from __future__ import annotations

import functools
from typing import Any

import pyvips

from processor.core import apng, gif
from processor.core import heif as heif_boxes
from processor.core.errors import CorruptImage
from processor.core.formats import BY_NAME
from processor.core.sniff import ftyp_brands
from processor.imaging import cms, frames, hdr, vips
from processor.imaging.budget import UNLIMITED, TimeBudget
from processor.imaging.pixels import Held, Pixels, display_range, hold, to_srgb
from processor.imaging.spool import Spooled
from processor.rules.cost import jpeg_shrink
from processor.rules.header import Header
from processor.rules.metadata import nclx_to_srgb_matrix
from processor.rules.plan import Plan


def decode(spooled: Spooled, plan: Plan, header: Header, budget: TimeBudget = UNLIMITED) -> Pixels:
    """The one decode: every later step reads these pixels, never the file."""
    fmt = header.format
    try:
        if plan.animated:
            return frames.read(spooled.path, header, plan, budget)
        if plan.motion is not None:
            return _poster(spooled, plan, header, budget)
    except pyvips.Error as e:
        raise vips.failure(e, budget, "decoding", spooled, fmt) from e
    except apng.ApngError as e:
        raise CorruptImage(f"the APNG animation cannot be read: {e}") from e
    except (ValueError, OSError, EOFError) as e:
        # Pillow's words may name the file: the message says what, not where.
        label = BY_NAME[fmt].label
        raise CorruptImage(f"the {label} animation's frames cannot be decoded") from e
    if fmt == "heic":
        return decode_heic(spooled, plan, header, budget)
    if _own_jpeg_decode(plan, header):
        decoded = decode_jpeg(spooled, plan, header, budget)
        if decoded is not None:
            return decoded
    try:
        if fmt == "gif" and header.has_alpha:
            image = _gif_first_frame(spooled, plan)
        elif fmt == "avif" and _avif_sequence(spooled):
            image = pyvips.Image.heifload(str(spooled.path), access="sequential", fail_on="error")
            image = image.thumbnail_image(plan.decode_width, **_thumbnail_options(plan))
        elif header.signed_or_float:
            # thumbnail would cast these samples to 8 bits as they are (floats from 0 to 1:
            # black): moved to the display range first, then resized.
            image = vips.LOAD[fmt](str(spooled.path), access="sequential", fail_on="error")
            image = display_range(image).thumbnail_image(
                plan.decode_width, **_thumbnail_options(plan)
            )
        else:
            nclx = heif_boxes.nclx(spooled.path) if fmt == "avif" and not header.has_icc else None
            if hdr.is_hdr(nclx):
                assert nclx is not None
                return hold(budget.watch(_hdr_avif(spooled, plan, nclx)))
            options = _thumbnail_options(plan, fail_on="error")
            image = pyvips.Image.thumbnail(str(spooled.path), plan.decode_width, **options)
            matrix = nclx_to_srgb_matrix(nclx)
            if matrix is not None and image.bands >= 3:
                # nclx-described primaries (Display P3: Apple's AVIFs), as for HEIC.
                return hold(budget.watch(cms.primaries_to_srgb(to_srgb(image), matrix)))
        # Materialise once: every rendition and format below reads these pixels, never the file.
        return hold(budget.watch(to_srgb(image)))
    except pyvips.Error as e:
        raise vips.failure(e, budget, "decoding", spooled, fmt) from e


def _thumbnail_options(plan: Plan, **more: Any) -> dict[str, Any]:
    """``thumbnail``'s options; the loaders get fail_on="error": a truncated or damaged image
    is refused, never rendered half-grey.

    ``size="force"``: exactly the planned width and height, each side scaled on its own (the
    plan rounds both sides and never asks for more than the source). Keeping the aspect ratio
    instead can land a pixel short (1622x2880 into 2048: 1153x2047), and the largest rendition
    would then be resampled a second time."""
    options: dict[str, Any] = {"height": plan.decode_height, "size": "force", **more}
    if plan.colour_manage:
        # Embedded profile (or libvips' CMYK fallback) -> sRGB.
        options["export_profile"] = "srgb"
    return options


def _gif_first_frame(spooled: Spooled, plan: Plan) -> pyvips.Image:
    """A GIF's first frame on its canvas as a browser shows it: where the frame does not
    reach, transparent (libvips paints it black when the GIF has no transparent colour)."""
    image = pyvips.Image.gifload(str(spooled.path), access="sequential", fail_on="error")
    first = gif.first_frame(spooled.path)
    if image.bands == 3 and first is not None and not first.covers_canvas:
        painted = pyvips.Image.black(image.width, image.height).draw_rect(
            255, first.left, first.top, first.width, first.height, fill=True
        )
        image = image.bandjoin(painted.cast("uchar")).copy(interpretation="srgb")
    return image.thumbnail_image(plan.decode_width, **_thumbnail_options(plan))


def _hdr_avif(spooled: Spooled, plan: Plan, nclx: dict[str, Any]) -> pyvips.Image:
    """A PQ or HLG AVIF at the decode size, tone-mapped to SDR sRGB (processor/imaging/hdr.py)
    from its full-depth samples (``thumbnail`` would cut them to 8 bits first)."""
    image = pyvips.Image.heifload(str(spooled.path), access="sequential", fail_on="error")
    w, h = plan.decode_width, plan.decode_height
    if (image.width, image.height) != (w, h):
        image = image.resize(w / image.width, vscale=h / image.height, kernel="lanczos3")
    return hdr.to_sdr(image, nclx, nclx_to_srgb_matrix(nclx))


def _avif_sequence(spooled: Spooled) -> bool:
    """An ``avis`` file: libvips' loader guess refuses it, its own loader reads the still."""
    brands = ftyp_brands(spooled.head)
    return brands is not None and brands[0] == b"avis"


def _poster(spooled: Spooled, plan: Plan, header: Header, budget: TimeBudget) -> Held:
    """An animation kept still: its poster frame only, as a still image's decode."""
    assert plan.motion is not None
    index = plan.motion.poster
    if header.format == "gif" and index == 0 and header.has_alpha:
        image = _gif_first_frame(spooled, plan)
    elif header.format in ("gif", "webp"):
        # The first frame is today's still, exactly: libvips' thumbnail of page 0.
        extra = {"option_string": f"page={index}"} if index else {}
        options = _thumbnail_options(plan, fail_on="error", **extra)
        image = pyvips.Image.thumbnail(str(spooled.path), plan.decode_width, **options)
    else:
        image = frames.poster(spooled.path, header, plan, index)
    return hold(budget.watch(to_srgb(image)))


def _cmyk_jpeg(header: Header) -> bool:
    return (
        header.format == "jpeg"
        and header.interpretation == "cmyk"
        and header.bands == 4
        and header.sample_bytes == 1
        and cms.available()
    )


def _stored_size(plan: Plan, header: Header) -> tuple[int, int]:
    """The decode size before EXIF orientation is applied (the loader's own orientation)."""
    if header.orientation in (5, 6, 7, 8):
        return plan.decode_height, plan.decode_width
    return plan.decode_width, plan.decode_height


def _thumbnail_jpeg_shrink(x_factor: float, y_factor: float) -> int:
    """The shrink-on-load libvips' ``thumbnail`` picks for JPEG: it leaves a factor of two or
    more to the resize after it (libjpeg then decodes up to 4x the pixels jpeg_shrink does)."""
    factor = min(x_factor, y_factor)
    return 8 if factor >= 16 else 4 if factor >= 8 else 2 if factor >= 4 else 1


def _own_jpeg_decode(plan: Plan, header: Header) -> bool:
    """Whether decode_jpeg, not libvips' thumbnail, decodes this JPEG: CMYK (a kept colour
    transform), or a shrink-on-load larger than thumbnail's (fewer pixels decoded)."""
    if header.format != "jpeg" or header.sample_bytes != 1:
        return False
    width, height = _stored_size(plan, header)
    ours = jpeg_shrink(header.width, header.height, width, height)
    return _cmyk_jpeg(header) or ours > _thumbnail_jpeg_shrink(
        header.width / width, header.height / height
    )


@functools.cache
def _fallback_cmyk_profile() -> bytes:
    """The profile libvips assumes for untagged CMYK: the same colours on either path."""
    profile: bytes = pyvips.Operation.call("profile_load", "cmyk")
    return profile


def decode_jpeg(spooled: Spooled, plan: Plan, header: Header, budget: TimeBudget) -> Held | None:
    """A JPEG decoded as Pillow's ``draft`` does it: libjpeg shrinks by the largest power of two
    that keeps the decode size (``jpeg_shrink``, what processor/rules/cost.py assumes), where
    ``thumbnail`` would stop one step earlier and decode up to 4x the pixels (a 100 MP photo:
    about 20 MB more at the peak, and the CPU to match). The resize runs in the source's
    space, then the colour: CMYK by a LittleCMS transform kept per profile (imaging/cms.py),
    which libvips would rebuild for every image (about 30 ms for a print profile, even for a
    thumbnail); tagged RGB and grey by libvips' ``icc_transform``.

    None when this path cannot decode it (an unusable profile, a libvips error): then
    ``thumbnail`` decodes it, and reports a damaged file as it always has."""
    width, height = _stored_size(plan, header)
    cmyk = _cmyk_jpeg(header)
    try:
        image = pyvips.Image.jpegload(
            str(spooled.path),
            shrink=jpeg_shrink(header.width, header.height, width, height),
            access="sequential",
            fail_on="error",
        )
        fields = set(image.get_fields())
        profile = image.get("icc-profile-data") if "icc-profile-data" in fields else None
        xres, yres = image.xres, image.yres
        if (image.width, image.height) != (width, height):
            image = image.resize(
                width / image.width, vscale=height / image.height, kernel="lanczos3"
            )
        if plan.colour_manage and not cmyk:
            image = image.icc_transform("srgb", embedded=True, intent="relative")
        held = hold(budget.watch(image if cmyk else to_srgb(image)))
    except pyvips.Error:
        budget.check("decoding")
        return None
    if cmyk:
        try:
            rgb = cms.cmyk_to_srgb(held.data, width, height, profile or _fallback_cmyk_profile())
        except ValueError:
            return None
        del held
        budget.check("decoding")  # LittleCMS cannot be stopped midway: checked after
        held = Held.over(rgb, width, height, 3, "uchar", "srgb", xres, yres)
    if header.orientation == 1:
        return held
    try:
        turned = held.image.copy()
        turned.set_type(pyvips.GValue.gint_type, "orientation", header.orientation)
        return hold(budget.watch(turned.autorot()))
    except pyvips.Error as e:
        raise vips.failure(e, budget, "decoding", spooled, "jpeg") from e


def decode_heic(spooled: Spooled, plan: Plan, header: Header, budget: TimeBudget) -> Held:
    """HEVC HEIF: pi-heif decodes the primary image once, upright (imaging/heic.py); libvips
    takes the pixels from memory and does the rest exactly as for every other format."""
    from processor.imaging.heic import decode_primary

    pixels = decode_primary(spooled.path)
    budget.check("decoding")  # libheif's decode cannot be stopped midway: checked after
    if (pixels.width, pixels.height) != header.oriented_size:
        width, height = header.oriented_size
        raise CorruptImage(
            f"the HEIC image decoded to {pixels.width}x{pixels.height} pixels; its header "
            f"declares {width}x{height}"
        )
    try:
        image = pyvips.Image.new_from_memory(
            pixels.data, pixels.width, pixels.height, pixels.bands, pixels.band_format
        )
        if pixels.bands < 3:
            grey = "grey16" if pixels.band_format == "ushort" else "b-w"
            image = image.copy(interpretation=grey)
        if pixels.premultiplied:
            image = image.unpremultiply().cast("uchar")
        options: dict[str, Any] = {"height": plan.decode_height, "size": "force"}
        if pixels.icc:
            image = image.copy()
            image.set_type(pyvips.GValue.blob_type, "icc-profile-data", pixels.icc)
            if plan.colour_manage:
                options["export_profile"] = "srgb"
        image = image.thumbnail_image(plan.decode_width, **options)
        # Greyscale has no primaries to convert: its one channel is neutral in any of them.
        colour = pixels.bands >= 3 and not pixels.icc
        matrix = nclx_to_srgb_matrix(pixels.nclx) if colour else None
        if colour and hdr.is_hdr(pixels.nclx):
            assert pixels.nclx is not None
            image = hdr.to_sdr(image, pixels.nclx, matrix)  # from 8-bit codes: coarser
        elif matrix is not None:
            image = cms.primaries_to_srgb(image, matrix)
        # `pixels` (and so libheif's buffer) stays referenced until this copy is done.
        decoded = hold(budget.watch(to_srgb(image)))
        del pixels
        return decoded
    except pyvips.Error as e:
        raise vips.failure(e, budget, "decoding", spooled, "heic") from e
