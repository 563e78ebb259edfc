"""Step 3, probe: the header facts every decision starts from, before any pixel is decoded.

libvips reads a header without decoding pixels; an animation's facts come from the same
header (GIF, WebP: frames, delays, loop), from the APNG chunks (processor/core/apng.py) or
from an AVIF sequence's track (processor/core/avis.py, and libavif's own parse for its size).
"""

from __future__ import annotations

from dataclasses import replace

import pyvips

from processor.core import apng, gif, tiff
from processor.core import avis as avis_boxes
from processor.core import heif as heif_boxes
from processor.core.config import Limits
from processor.core.errors import CorruptImage, TooManyFrames, UnsupportedFormat
from processor.core.formats import (
    BY_NAME,
    accepted_labels,
    not_decodable,
    not_decodable_feature,
)
from processor.core.sniff import ftyp_brands
from processor.imaging import avis, vips
from processor.imaging.spool import Spooled
from processor.rules.header import Header
from processor.rules.metadata import icc_description
from processor.rules.plan import check_limits

# HEIF's primary-image codec, as libvips' header reports it ("heif-compression").
_HEIF_CODECS = {"hevc": "heic", "av1": "avif"}
# Bytes per band sample of each libvips band format (the cost model's sample depth).
_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "double": 8}
_SIGNED_OR_FLOAT = frozenset({"char", "short", "int", "float", "double", "complex", "dpcomplex"})
# Formats whose frames libvips' own header describes as an animation.
_VIPS_ANIMATIONS = frozenset({"gif", "webp"})


def heif_format(image: pyvips.Image, sniffed: str) -> str:
    """A HEIF's format from its primary image's codec in the header, not from the brands
    alone (a generic "mif1" file can hold either); a codec this build lacks is refused."""
    fields = set(image.get_fields())
    codec = str(image.get("heif-compression")) if "heif-compression" in fields else ""
    fmt = _HEIF_CODECS.get(codec.lower())
    if fmt is None:
        raise UnsupportedFormat(not_decodable(BY_NAME[sniffed], codec.upper() or None))
    if not BY_NAME[fmt].decodes:
        raise UnsupportedFormat(not_decodable(BY_NAME[fmt]))
    return fmt


def probe(
    spooled: Spooled, fmt: str, max_frames: int = 1_000, limits: Limits | None = None
) -> tuple[Header, pyvips.Image]:
    """Read the header only (libvips decodes no pixel until asked). ``max_frames``: an
    animation with more frames is refused before its frames are listed. ``limits``: what a
    HEIF libheif will not open (too many tiles) is measured against."""
    if fmt == "tiff":
        _check_tiff(spooled)
    try:
        image = vips.LOAD[fmt](str(spooled.path), access="sequential", fail_on="error")
        fields = set(image.get_fields())
        orientation = image.get("orientation") if "orientation" in fields else 1
        if fmt in ("heic", "avif"):
            fmt = heif_format(image, fmt)
            # libheif has applied irot/imir to the reported size and applies them to the
            # pixels; an EXIF orientation tag is never applied a second time.
            orientation = 1
        has_icc = "icc-profile-data" in fields
        frames = image.get("n-pages") if "n-pages" in fields else 1
        header = Header(
            format=fmt,
            width=image.width,
            height=image.height,
            input_bytes=spooled.size,
            orientation=orientation if 1 <= orientation <= 8 else 1,
            has_alpha=bool(image.hasalpha()),
            frames=frames,
            has_icc=has_icc,
            icc_description=icc_description(image.get("icc-profile-data")) if has_icc else None,
            interpretation=str(image.interpretation),
            bands=image.bands,
            sample_bytes=_SAMPLE_BYTES.get(str(image.format), 4),
            signed_or_float=str(image.format) in _SIGNED_OR_FLOAT,
            # libvips marks progressive JPEGs and Adam7 PNGs: both are decoded whole.
            interlaced="interlaced" in fields and bool(image.get("interlaced")),
            animation=fmt in _VIPS_ANIMATIONS and frames > 1,
            delays_ms=tuple(image.get("delay")) if "delay" in fields else (),
            # libvips says plays (0 = forever) for GIF too: the NETSCAPE repeat count plus one.
            loop=int(image.get("loop")) if "loop" in fields else 0,
        )
    except pyvips.Error as e:
        detail = vips.message(e, spooled, fmt)
        codec = tiff.missing_codec(detail) if fmt == "tiff" else None
        if codec is not None:
            raise UnsupportedFormat(not_decodable_feature(BY_NAME[fmt], codec)) from e
        if fmt in ("heic", "avif"):
            _heif_refusal(spooled, fmt, detail, limits or Limits())
        raise CorruptImage(
            f"the {BY_NAME[fmt].label} header cannot be read" + (f": {detail}" if detail else "")
        ) from e
    if header.frames > max_frames and header.animation:
        return header, image  # the plan refuses it, naming the count
    if fmt == "gif" and not header.has_alpha:
        limit = header.frames if header.animation else 1
        if gif.clears(gif.rectangles(spooled.path, limit=limit)):
            # What no frame shows (unpainted yet, or cleared) is transparent, as browsers
            # show it.
            header = replace(header, has_alpha=True, bands=4)
    if fmt == "png":
        header = _apng(spooled, header, max_frames)
    elif fmt == "avif":
        header = _avif_sequence(spooled, header, max_frames)
    return header, image


def _heif_refusal(spooled: Spooled, fmt: str, detail: str, limits: Limits) -> None:
    """A valid HEIF libheif will not open, named from its boxes: too big, a kind of image this
    build lacks, or an image sequence with no still. Returns where the bytes look damaged."""
    label = BY_NAME[fmt].label
    if "Security limit exceeded" in detail:
        size = heif_boxes.largest_size(spooled.path)
        if size is not None:
            # The plan's own limits, from the container's extents (a 200 MP photo in tiles).
            check_limits(Header(fmt, *size, input_bytes=spooled.size), limits)
        raise UnsupportedFormat(
            not_decodable_feature(BY_NAME[fmt], "more items (tiles) than libheif opens")
        )
    if "Image item of type 'unci'" in detail:
        raise UnsupportedFormat(
            not_decodable_feature(BY_NAME[fmt], "uncompressed ('unci') image items")
        )
    brands = ftyp_brands(spooled.head)
    if brands is not None and brands[0] in heif_boxes.SEQUENCE_BRANDS:
        raise UnsupportedFormat(
            f"{label} image sequences without a still image are not "
            f"supported by this build; send {accepted_labels()}"
        )
    if "Unsupported feature" in detail:
        raise UnsupportedFormat(not_decodable_feature(BY_NAME[fmt], detail.split(":")[-1].strip()))


def _check_tiff(spooled: Spooled) -> None:
    """A codec or sample layout this build cannot decode, refused by name from IFD0."""
    ifd = tiff.read(spooled.path)
    reason = tiff.refusal(ifd) if ifd is not None else None
    if reason is not None:
        raise UnsupportedFormat(not_decodable_feature(BY_NAME["tiff"], reason))


def _apng(spooled: Spooled, header: Header, max_frames: int) -> Header:
    try:
        animation = apng.read(spooled.path, max_frames)
    except apng.TooMany as e:
        raise TooManyFrames(f"the APNG has {e}; the limit is {max_frames:,}") from e
    except apng.ApngError as e:
        raise CorruptImage(f"the APNG animation cannot be read: {e}") from e
    if animation is None or len(animation.frames) < 2:
        return header
    return replace(
        header,
        frames=len(animation.frames),
        animation=True,
        delays_ms=tuple(f.delay_ms for f in animation.frames),
        loop=animation.loop,
        has_alpha=header.has_alpha or animation.clears,
        bands=4 if header.has_alpha or animation.clears else header.bands,
    )


def _avif_sequence(spooled: Spooled, header: Header, max_frames: int) -> Header:
    brands = ftyp_brands(spooled.head)
    if brands is None or b"avis" not in (brands[0], *brands[1]) or not avis.available():
        return header
    try:
        sequence = avis_boxes.read(spooled.path, max_frames)
    except avis_boxes.AvisError as e:
        if "frames" in str(e):
            raise TooManyFrames(f"the AVIF sequence has {e}; the limit is {max_frames:,}") from e
        raise CorruptImage(f"the AVIF sequence's track cannot be read: {e}") from e
    if sequence is None or sequence.frames < 2:
        return header
    track = avis.probe(spooled.path)
    return replace(
        header,
        width=track.width,
        height=track.height,
        orientation=track.orientation,
        has_alpha=track.has_alpha,
        bands=4 if track.has_alpha else 3,
        sample_bytes=1,  # libavif hands the frames over as 8-bit
        frames=sequence.frames,
        animation=True,
        delays_ms=sequence.delays_ms,
        loop=0,  # an AVIF sequence plays forever (browsers ignore its edit list's repeats)
    )
