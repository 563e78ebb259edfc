"""The executor: the only module that imports pyvips. It turns a Plan into bytes.

One upload goes through small named steps:

    open (spool + hash) -> sniff -> probe header -> plan (pure, limits checked) ->
    decode once (shrink-on-load, auto-orient, colour-manage) -> to 8-bit sRGB ->
    derive each rendition from the decoded image -> describe (colour, placeholder) ->
    encode every (rendition, format) concurrently, metadata stripped

libvips releases the GIL, so the encodes run in parallel threads and use both cores of a
Lambda even for a single image.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyvips

from processor.core.config import EngineConfig, check_bytes
from processor.core.diagnostics import vips_detail
from processor.core.errors import (
    CorruptImage,
    EmptyImage,
    TimeBudgetExceeded,
    UnsupportedFormat,
)
from processor.core.formats import BY_NAME, LOADERS, accepted_labels, not_decodable
from processor.core.keys import CONTENT_TYPES, content_version, rendition_key
from processor.core.record import ImageFacts, RenditionInfo
from processor.core.sniff import SNIFF_BYTES, describe_unknown, detect_format
from processor.imaging import cms, webp
from processor.rules.cost import jpeg_shrink
from processor.rules.header import Header
from processor.rules.metadata import (
    blurhash,
    dominant_color,
    exif_datetime,
    icc_description,
    nclx_to_srgb_matrix,
)
from processor.rules.plan import ALPHA_FORMATS, Encode, Plan, RenditionPlan, make_plan

_CHUNK = 1024 * 1024
# The libvips function of each allowed loader class (processor/core/formats.py says which
# format uses which); every other libvips loader is blocked for the whole process.
_LOADER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "VipsForeignLoadJpeg": pyvips.Image.jpegload,
    "VipsForeignLoadPng": pyvips.Image.pngload,
    "VipsForeignLoadWebp": pyvips.Image.webpload,
    "VipsForeignLoadNsgif": pyvips.Image.gifload,
    "VipsForeignLoadTiff": pyvips.Image.tiffload,
    "VipsForeignLoadHeif": pyvips.Image.heifload,
}
_LOADER_CLASSES = LOADERS
_LOADERS = {fmt: _LOADER_FUNCTIONS[cls] for fmt, cls in LOADERS.items()}
# HEIF's primary-image codec, as libvips' header reports it ("heif-compression").
_HEIF_CODECS = {"hevc": "heic", "av1": "avif"}
# A 16-pixel copy is plenty for a 4x3-component BlurHash and the dominant colour, and keeps
# the pure-Python work near a millisecond.
_PLACEHOLDER_SIZE = 16

# Bytes per band sample of each libvips band format (the cost model's sample depth).
_SAMPLE_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "double": 8}

_vips_lock = threading.Lock()
_vips_ready = False


def init_vips(cache_max: int = 0) -> None:
    """Lock libvips down once per process: no untrusted or unexpected loader can ever run."""
    global _vips_ready
    with _vips_lock:
        if _vips_ready:
            return
        pyvips.block_untrusted_set(True)
        pyvips.operation_block_set("VipsForeignLoad", True)
        for name in set(_LOADER_CLASSES.values()):
            pyvips.operation_block_set(name, False)
        # Each upload is seen once: an operation cache only holds memory in warm containers.
        pyvips.cache_set_max(cache_max)
        pyvips.cache_set_max_mem(64 * 1024 * 1024 if cache_max else 0)
        _vips_ready = True


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    info: RenditionInfo
    data: bytes


@dataclass(frozen=True)
class Result:
    image_id: str
    facts: ImageFacts
    outputs: list[Output]
    config_version: str
    content_version: str | None
    # Milliseconds: read (spool + hash), decode (one decode to the largest rendition),
    # encode (smaller renditions, placeholder and every encode, overlapped), total.
    timings: dict[str, float] = field(default_factory=dict)


# --- input ---------------------------------------------------------------------------------


class Spooled:
    """An upload on local disk with its hash and size: read once, never held in memory.

    Streams are copied to a temporary file while hashing (deleted on close); paths are used
    in place. libvips then decodes from the file with shrink-on-load.
    """

    def __init__(self, path: Path, sha256: str, size: int, head: bytes, owned: bool) -> None:
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.head = head
        self._owned = owned

    def close(self) -> None:
        if self._owned:
            self.path.unlink(missing_ok=True)
            self._owned = False

    def __enter__(self) -> Spooled:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def spool(source: str | Path | IO[bytes], max_bytes: int, tmp_dir: str | None = None) -> Spooled:
    """Hash and measure a path in place, or copy a stream to a temp file while hashing."""
    digest = hashlib.sha256()
    if isinstance(source, str | Path):
        path = Path(source)
        size = path.stat().st_size
        check_bytes(size, max_bytes)
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
            digest.update(head)
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return Spooled(path, digest.hexdigest(), size, head, owned=False)

    fd, name = tempfile.mkstemp(prefix="imgpipe-", dir=tmp_dir)
    path = Path(name)
    size = 0
    head = b""
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                check_bytes(size, max_bytes, at_least=True)
                if len(head) < SNIFF_BYTES:
                    head = (head + chunk)[:SNIFF_BYTES]
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Spooled(path, digest.hexdigest(), size, head, owned=True)


# --- steps -----------------------------------------------------------------------------------


def _vips_message(e: pyvips.Error, spooled: Spooled, fmt: str) -> str:
    """libvips' detail about this upload only: no path, no other image's lines, no repeats."""
    return vips_detail(str(e.detail or ""), str(spooled.path), BY_NAME[fmt].error_domains)


def _damaged(e: pyvips.Error, spooled: Spooled, fmt: str) -> CorruptImage:
    label = BY_NAME[fmt].label
    detail = _vips_message(e, spooled, fmt)
    return CorruptImage(
        f"the {label} image data is damaged or truncated" + (f": {detail}" if detail else "")
    )


class TimeBudget:
    """One image's time budget, enforced inside libvips' evaluation.

    ``watch`` turns on progress signals for an image about to be computed; libvips emits
    ``eval`` once per work unit (a tile or a strip), and past the deadline the handler sets
    the image's kill flag, so libvips stops at the next work unit and the computation raises.
    ``check`` is the same test between steps. Calls into an encoder library that libvips
    cannot interrupt (libwebp, libaom once the pixels are ready) end before the check runs.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._ends = math.inf if seconds is None else time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._ends

    def watch(self, image: pyvips.Image) -> pyvips.Image:
        if self.seconds is not None:
            image.set_progress(True)
            image.signal_connect("eval", self._on_eval)
        return image

    def _on_eval(self, image: pyvips.Image, _progress: Any) -> None:
        if self.expired:
            image.set_kill(True)

    def check(self, step: str) -> None:
        if self.expired:
            raise self.exceeded(step)

    def exceeded(self, step: str) -> TimeBudgetExceeded:
        return TimeBudgetExceeded(
            f"stopped while {step}: the image took longer than its time budget of "
            f"{self.seconds:g} s; a function with more memory (and so more CPU) or a larger "
            "budget may finish it (then reprocess it)"
        )


def _vips_failure(
    e: pyvips.Error, budget: TimeBudget, step: str, spooled: Spooled, fmt: str
) -> Exception:
    """A libvips error, read: the budget's kill, or damaged data."""
    if budget.expired:
        return budget.exceeded(step)
    return _damaged(e, spooled, fmt)


def sniff(spooled: Spooled) -> str:
    if spooled.size == 0:
        raise EmptyImage("the upload is empty (0 bytes)")
    fmt = detect_format(spooled.head)
    if fmt is None:
        raise UnsupportedFormat(
            f"{describe_unknown(spooled.head)} is not an accepted upload format; "
            f"send {accepted_labels()}"
        )
    if not BY_NAME[fmt].decodes:
        raise UnsupportedFormat(not_decodable(BY_NAME[fmt]))
    return fmt


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


def probe(spooled: Spooled, fmt: str) -> tuple[Header, pyvips.Image]:
    """Read the header only (libvips decodes no pixel until asked)."""
    try:
        image = _LOADERS[fmt](str(spooled.path), access="sequential", fail_on="error")
        fields = set(image.get_fields())
        orientation = image.get("orientation") if "orientation" in fields else 1
        if fmt in ("heic", "avif"):
            fmt = heif_format(image, fmt)
            # libheif has applied irot/imir to the reported size and applies them to the
            # pixels; an EXIF orientation tag is never applied a second time.
            orientation = 1
        has_icc = "icc-profile-data" in fields
        header = Header(
            format=fmt,
            width=image.width,
            height=image.height,
            input_bytes=spooled.size,
            orientation=orientation if 1 <= orientation <= 8 else 1,
            has_alpha=bool(image.hasalpha()),
            frames=image.get("n-pages") if "n-pages" in fields else 1,
            has_icc=has_icc,
            icc_description=icc_description(image.get("icc-profile-data")) if has_icc else None,
            interpretation=str(image.interpretation),
            bands=image.bands,
            sample_bytes=_SAMPLE_BYTES.get(str(image.format), 4),
            # libvips marks progressive JPEGs and Adam7 PNGs: both are decoded whole.
            interlaced="interlaced" in fields and bool(image.get("interlaced")),
        )
    except pyvips.Error as e:
        detail = _vips_message(e, spooled, fmt)
        raise CorruptImage(
            f"the {BY_NAME[fmt].label} header cannot be read" + (f": {detail}" if detail else "")
        ) from e
    return header, image


def decode(
    spooled: Spooled,
    plan: Plan,
    header: Header | None = None,
    budget: TimeBudget | None = None,
) -> Held:
    """The one decode: shrink-on-load to the largest rendition, upright, 8-bit sRGB, in memory."""
    budget = budget or TimeBudget(None)
    fmt = header.format if header else "jpeg"
    if header is not None and fmt == "heic":
        return decode_heic(spooled, plan, header, budget)
    if header is not None and _own_jpeg_decode(plan, header):
        decoded = decode_jpeg(spooled, plan, header, budget)
        if decoded is not None:
            return decoded
    # fail_on="error": a truncated or damaged image is refused, never rendered half-grey.
    options: dict[str, Any] = {"height": plan.decode_height, "size": "down", "fail_on": "error"}
    if plan.colour_manage:
        # Embedded profile (or libvips' CMYK fallback) -> sRGB.
        options["export_profile"] = "srgb"
    try:
        image = pyvips.Image.thumbnail(str(spooled.path), plan.decode_width, **options)
        # Materialise once: every rendition and format below reads these pixels, never the file.
        return hold(budget.watch(to_srgb(image)))
    except pyvips.Error as e:
        raise _vips_failure(e, budget, "decoding", spooled, fmt) from e


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
        raise _vips_failure(e, budget, "decoding", spooled, "jpeg") from e


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
            pixels.data, pixels.width, pixels.height, pixels.bands, "uchar"
        )
        if pixels.premultiplied:
            image = image.unpremultiply().cast("uchar")
        options: dict[str, Any] = {"height": plan.decode_height, "size": "down"}
        if pixels.icc:
            image = image.copy()
            image.set_type(pyvips.GValue.blob_type, "icc-profile-data", pixels.icc)
            if plan.colour_manage:
                options["export_profile"] = "srgb"
        image = image.thumbnail_image(plan.decode_width, **options)
        matrix = None if pixels.icc else nclx_to_srgb_matrix(pixels.nclx)
        if matrix is not None:
            image = primaries_to_srgb(image, matrix)
        # `pixels` (and so libheif's buffer) stays referenced until this copy is done.
        decoded = hold(budget.watch(to_srgb(image)))
        del pixels
        return decoded
    except pyvips.Error as e:
        raise _vips_failure(e, budget, "decoding", spooled, "heic") from e


def primaries_to_srgb(image: pyvips.Image, matrix: Any) -> pyvips.Image:
    """nclx-described colour (Display P3, BT.2020) to sRGB: in linear light, a 3x3 matrix."""
    alpha = image.extract_band(3) if image.bands == 4 else None
    rgb = image.extract_band(0, n=3) if image.bands == 4 else image
    linear = rgb.copy(interpretation="srgb").colourspace("scrgb")
    mixed = linear.recomb([list(row) for row in matrix]).copy(interpretation="scrgb")
    out = mixed.colourspace("srgb")
    return out.bandjoin(alpha) if alpha is not None else out


@dataclass(frozen=True)
class Held:
    """Computed pixels in one buffer that Python owns, read by libvips as ``image`` and by
    the WebP encoder as ``data``: unlike ``copy_memory`` followed by ``write_to_memory``, one
    copy of the pixels, not two (9 MB less at the peak for a 2048 px rendition, and a few ms
    off the critical path before the WebP encode starts)."""

    image: pyvips.Image
    data: Any  # a buffer of image.width * image.height * image.bands bytes (8-bit)

    @classmethod
    def over(
        cls,
        data: Any,
        width: int,
        height: int,
        bands: int,
        band_format: str,
        interpretation: str,
        xres: float,
        yres: float,
    ) -> Held:
        """A libvips image reading ``data`` in place. The resolution is carried over (JPEG
        and PNG write it into their headers); other metadata is not needed: every encode
        strips it. new_from_memory keeps ``data`` referenced for as long as the image (and
        what is made from it) lives."""
        image = pyvips.Image.new_from_memory(data, width, height, bands, band_format)
        return cls(image.copy(interpretation=interpretation, xres=xres, yres=yres), data)


def hold(image: pyvips.Image) -> Held:
    """Compute ``image`` into memory once."""
    return Held.over(
        image.write_to_memory(),
        image.width,
        image.height,
        image.bands,
        image.format,
        image.interpretation,
        image.xres,
        image.yres,
    )


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Greyscale, 16-bit, LAB and untagged CMYK all end as 8-bit sRGB (alpha kept)."""
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def derive(decoded_pixels: Held, r: RenditionPlan, budget: TimeBudget | None = None) -> Held:
    """One rendition's pixels from the decoded image (never upscaled, exact planned size)."""
    watch = (budget or TimeBudget(None)).watch
    decoded = decoded_pixels.image
    if (decoded.width, decoded.height) == (r.width, r.height):
        return decoded_pixels
    if r.crop:
        scale = max(r.width / decoded.width, r.height / decoded.height)
        image = decoded
        if scale < 1:
            w = max(r.width, round(decoded.width * scale))
            h = max(r.height, round(decoded.height * scale))
            image = decoded.thumbnail_image(w, height=h, size="force")
        return hold(watch(cover_crop(image, r)))
    return hold(watch(decoded.thumbnail_image(r.width, height=r.height, size="force")))


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


def flatten(image: pyvips.Image) -> pyvips.Image:
    if image.hasalpha():
        return image.flatten(background=[255, 255, 255])
    return image


def describe(image: pyvips.Image) -> tuple[str, str]:
    """Dominant colour and BlurHash, from a tiny copy of the smallest rendition.

    The copy is a box filter by a whole factor (``shrink``): BlurHash is itself a blur, and
    ``thumbnail_image`` would first build Lanczos kernels, about 2 ms for every image.
    """
    factor = max(1, math.ceil(max(image.width, image.height) / _PLACEHOLDER_SIZE))
    # Never past one pixel on the short side: a 1000x40000 upload's thumbnail is 8 px wide.
    fx, fy = min(factor, image.width), min(factor, image.height)
    tiny = flatten(image.shrink(fx, fy) if factor > 1 else image)
    pixels = bytes(tiny.write_to_memory())
    return dominant_color(pixels), blurhash(pixels, tiny.width, tiny.height)


def encode(held: Held, enc: Encode, budget: TimeBudget | None = None) -> bytes:
    """Encode with every metadata block stripped (EXIF, XMP, IPTC, ICC)."""
    image = held.image
    if enc.format == "webp" and image.format == "uchar" and webp.available(image.bands):
        if budget is not None:
            budget.check("encoding WEBP")  # libwebp cannot be stopped midway: checked before
        # The same bytes libvips' webpsave writes, by the faster libwebp (imaging/webp.py).
        return webp.encode(
            held.data,
            image.width,
            image.height,
            image.bands,
            quality=enc.quality,
            effort=enc.effort,
        )
    if budget is not None:
        budget.check(f"encoding {enc.format.upper()}")
        # A copy of its own: renditions are shared by encodes running in other threads.
        image = budget.watch(image.copy())
    if enc.format not in ALPHA_FORMATS:
        image = flatten(image)
    data: bytes
    if enc.format == "jpeg":
        # No optimize_coding: it more than doubles the encode time for about 1% fewer bytes.
        data = image.jpegsave_buffer(Q=enc.quality, keep="none")
    elif enc.format == "png":
        data = image.pngsave_buffer(compression=enc.quality, keep="none")
    elif enc.format == "webp":
        data = image.webpsave_buffer(Q=enc.quality, effort=enc.effort, keep="none")
    else:
        data = image.heifsave_buffer(
            Q=enc.quality, compression="av1", effort=enc.effort, keep="none", bitdepth=8
        )
    return data


def facts_from(header: Header, head_image: pyvips.Image, spooled: Spooled) -> dict[str, Any]:
    fields = set(head_image.get_fields())
    captured = (
        exif_datetime(head_image.get("exif-ifd2-DateTimeOriginal"))
        if "exif-ifd2-DateTimeOriginal" in fields
        else None
    )
    width, height = header.oriented_size
    bits = {"uchar": 8, "char": 8, "ushort": 16, "short": 16}.get(str(head_image.format), 32)
    return {
        "sha256": spooled.sha256,
        "input_bytes": spooled.size,
        "format": header.format,
        "width": width,
        "height": height,
        "orientation": header.orientation,
        "has_alpha": header.has_alpha,
        "frames": header.frames,
        "colour_space": header.interpretation,
        "bits_per_sample": bits,
        "icc_description": header.icc_description,
        "captured_at": captured,
    }


# --- the engine ------------------------------------------------------------------------------


class Engine:
    """Built once per process (Lambda container, CLI run); ``process`` is thread-safe."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        cache_max: int = 0,
        encode_workers: int | None = None,
        tmp_dir: str | None = None,
    ) -> None:
        init_vips(cache_max)
        self.config = config
        self.tmp_dir = tmp_dir
        self._pool = ThreadPoolExecutor(
            max_workers=encode_workers or max(2, os.cpu_count() or 2),
            thread_name_prefix="imgpipe-encode",
        )

    def spool(self, source: str | Path | IO[bytes]) -> Spooled:
        return spool(source, self.config.limits.max_input_bytes, self.tmp_dir)

    def process(
        self,
        source: str | Path | IO[bytes] | Spooled,
        *,
        image_id: str,
        versioned: bool = False,
        source_name: str | None = None,  # noqa: ARG002 - reserved for log context
        time_budget_s: float | None = None,
    ) -> Result:
        """``time_budget_s``: this image's budget when the caller has less time than the
        configured one (``limits.max_seconds``); the smaller of the two applies."""
        started = time.perf_counter()
        budgets = [b for b in (self.config.limits.max_seconds, time_budget_s) if b is not None]
        budget = TimeBudget(min(budgets, default=None))
        if isinstance(source, Spooled):
            return self._process(source, image_id, versioned, started, budget)
        with self.spool(source) as spooled:
            return self._process(spooled, image_id, versioned, started, budget)

    def _process(
        self, spooled: Spooled, image_id: str, versioned: bool, started: float, budget: TimeBudget
    ) -> Result:
        t_read = time.perf_counter()
        fmt = sniff(spooled)
        header, head_image = probe(spooled, fmt)
        plan = make_plan(header, self.config)  # raises on limits and cost, before any pixel

        decoded = decode(spooled, plan, header, budget)
        t_decode = time.perf_counter()
        version = content_version(spooled.sha256, self.config.version) if versioned else None

        # The largest rendition's encodes are the critical path (a 2048 px WebP is most of an
        # image's time), so they start first, straight from the decoded pixels; the smaller
        # renditions are derived, and the placeholder computed, while they run.
        order = sorted(plan.renditions, key=lambda r: -(r.width * r.height))
        images: dict[str, Held] = {}
        # Renditions that came out the same size share pixels (small images): encode once.
        futures: dict[tuple[int, Encode], Future[bytes]] = {}
        jobs: list[tuple[RenditionPlan, Held, Encode]] = []
        try:
            for r in order:
                image = images[r.name] = derive(decoded, r, budget)
                for enc in r.encodes:
                    jobs.append((r, image, enc))
                    if (id(image), enc) not in futures:
                        futures[(id(image), enc)] = self._pool.submit(encode, image, enc, budget)
            smallest = images[order[-1].name]
            colour, placeholder = describe(smallest.image)
            blobs = [futures[(id(image), enc)].result() for _, image, enc in jobs]
        except pyvips.Error as e:
            for future in futures.values():
                future.cancel()  # what has not started yet would only run out of time again
            raise _vips_failure(e, budget, "making the renditions", spooled, header.format) from e
        except TimeBudgetExceeded:
            for future in futures.values():
                future.cancel()
            raise
        t_encode = time.perf_counter()

        outputs = [
            Output(
                info=RenditionInfo(
                    name=r.name,
                    key=rendition_key(r.folder, image_id, enc.format, version),
                    format=enc.format,
                    content_type=CONTENT_TYPES[enc.format],
                    width=image.image.width,
                    height=image.image.height,
                    bytes=len(blob),
                ),
                data=blob,
            )
            for (r, image, enc), blob in zip(jobs, blobs, strict=True)
        ]
        outputs.sort(key=lambda o: (o.info.width * o.info.height, o.info.format))
        facts = ImageFacts(
            **facts_from(header, head_image, spooled),
            dominant_color=colour,
            placeholder=placeholder,
        )
        done = time.perf_counter()
        return Result(
            image_id=image_id,
            facts=facts,
            outputs=outputs,
            config_version=self.config.version,
            content_version=version,
            timings={
                "read": round((t_read - started) * 1000, 2),
                "decode": round((t_decode - t_read) * 1000, 2),
                "encode": round((t_encode - t_decode) * 1000, 2),
                "total": round((done - started) * 1000, 2),
            },
        )
