"""What one image costs to decode, from its header alone: a pure estimate of peak memory.

The same pixel count costs very different memory by format, because of how libvips (8.18)
decodes each one on the engine's path (``thumbnail`` with shrink-on-load, then one copy in
memory of the largest rendition):

- **streamed**: baseline JPEG (libjpeg scales by 1/2, 1/4 or 1/8 while decoding), PNG and
  TIFF (a few thousand rows in flight), WebP (libwebp decodes straight to the reduced size;
  only an alpha plane is held at full size). A 289 MP PNG peaks near 180 MB.
- **whole**: GIF (libnsgif's 4-byte canvas of the frame, plus libvips' copy), AVIF and HEIC
  (libheif's planes and its interleaved output), progressive JPEG (the whole image's DCT
  coefficients, 2 bytes a sample) and interlaced PNG (Adam7 needs every pass). A flat
  17000x17000 GIF of 196 KB peaks near 1.4 GB.

Every image also pays for its output: the decoded copy at the largest rendition's size, the
renditions derived from it and the encoders' buffers (``OUTPUT_BYTES_PER_PIXEL``); an encoder
with a working set of its own adds it (the encoder table's ``memory_per_pixel``: AVIF's libaom),
and so does the score step when it is on (``score_bytes``: it runs after the encodes, so the
larger of the two counts).

An animation kept animated (``estimate_motion``) holds every frame at the decode size and at
each animated rendition's size, next to one source frame being composed and the animated
WebP encoder's frames.

The coefficients were fitted to peak RSS measured above the engine's own baseline (the
command is in docs/processor.md) and rounded up: the estimate is meant to be above the real
peak, within about twice it. tests/processor/imaging/test_cost_measured.py measures real
decodes against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from processor.core.encoders import ENCODERS
from processor.core.formats import BY_NAME
from processor.rules.header import Header

# Lambda's "MB" of function memory is a MiB: the same unit here, in estimates and messages.
MB = 1024 * 1024
# Buffers, libvips' per-thread state and the placeholder: paid by every image.
FIXED_BYTES = 16 * MB
# Per pixel of the one decoded copy (the largest rendition's size): the copy itself (3-4 B),
# the smaller renditions, the sRGB conversion and the JPEG/WebP encoders' working buffers.
OUTPUT_BYTES_PER_PIXEL = 16
# Rows of input a streamed decode keeps in flight (strip caches, the shrink's window, more
# while threads wait on a loaded machine).
STREAMED_ROWS = 3_500
# Whole decodes, per pixel of the first frame.
GIF_BYTES_PER_PIXEL = 5  # libnsgif canvas (RGBA) + libvips' frame
AVIF_DECODE_BYTES_PER_PIXEL = 16  # per sample byte: libvips' heifload, planes and copies
HEIC_BYTES_PER_PIXEL = 5  # per sample byte: pi-heif's interleaved RGB(A) output, libvips' copy
PROGRESSIVE_JPEG_BYTES_PER_SAMPLE = 2  # a 16-bit DCT coefficient per sample
# Animations kept animated, per pixel of one source frame: the decoder's canvas (the frame as
# composed so far), the frame being decoded into it and the copy resized from it.
MOTION_SOURCE_BYTES_PER_PIXEL = {"gif": 12, "webp": 12, "png": 16, "avif": 24}
FRAME_BYTES_PER_PIXEL = 4  # every held frame is 8-bit RGBA (RGB without alpha)
# libwebp's animation encoder, per pixel of its frame: the canvases it compares (previous,
# current, disposed), the candidate sub-frames it encodes and keeps the smallest of.
ANIMATED_ENCODER_BYTES_PER_PIXEL = 48
# The encoded frames it holds until the file is assembled, per pixel of every frame.
ANIMATED_OUTPUT_BYTES_PER_PIXEL = 1
# The score step (when on; after the encodes, so the plan counts the larger of its working
# set and the encoders'): the decoded rendition, the pair as decoded in one array, the next
# scale's half-size copy, and 64 rows or 64 tiles at a time with their blurred planes; per
# pixel of the largest rendition scored. Its own peak, measured above its inputs, is 11 MB
# for a 320 px rendition, 44 MB for a 0.86 MP one scored whole and 41-75 MB for a 3.4-4.2 MP
# one sampled (RGB or RGBA). The process's peak is what the plan protects: the engine gives
# the encoders' freed memory back and scores on an encode thread (processor/imaging/heap.py),
# and then a 6000x6000 RGBA WebP peaked 149-244 MB above the warm engine with scores against
# 155-168 MB without, an 8000x8000 RGBA TIFF 166-206 against 162-206 (runs of the probe of
# tests/processor/imaging/test_cost_measured.py, whose other cases bound these from above: a
# progressive 4000x4000 JPEG peaks from 138 MB, and its estimate must stay within 2.5x that
# plus 48 MB).
SCORE_FIXED_BYTES = 24 * MB
SCORE_BYTES_PER_PIXEL = 36


@dataclass(frozen=True)
class Cost:
    """The estimated peak memory of one image, and how its format is decoded."""

    memory_bytes: int
    whole: bool  # the decoder holds the whole first frame (then stricter pixel limits apply)
    how: str  # for people: "GIF is decoded whole", "PNG is streamed"
    decode_pixels: int  # pixels the decoder produces: its work, before the renditions


def jpeg_shrink(src_w: int, src_h: int, decode_w: int, decode_h: int) -> int:
    """The shrink libjpeg applies while decoding (1, 2, 4 or 8) for this decode size."""
    factor = min(src_w / max(1, decode_w), src_h / max(1, decode_h))
    shrink = 1
    while shrink < 8 and shrink * 2 <= factor:
        shrink *= 2
    return shrink


# libheif decodes the primary image whole: through pi-heif for HEIC (straight to interleaved
# RGB), through libvips' heifload for AVIF (planes, then copies).
HEIF_FORMATS = frozenset({"heic", "avif", "heif"})


def decoded_whole(header: Header) -> tuple[bool, str]:
    """Whether the format (as this header describes it) is decoded whole, and the reason."""
    known = BY_NAME.get(header.format)
    name = known.label if known is not None else header.format.upper()
    if header.format == "gif" or header.format in HEIF_FORMATS:
        return True, f"{name} is decoded whole"
    if header.format == "jpeg" and header.interlaced:
        return True, "a progressive JPEG is decoded whole"
    if header.format == "png" and header.interlaced:
        return True, "an interlaced PNG is decoded whole"
    if header.format == "webp":
        return False, "WebP is decoded at the reduced size"
    return False, f"{name} is streamed"


def encoder_bytes(encodes: Iterable[tuple[str, int]]) -> int:
    """The largest encoder working set among (format, output pixels): the encodes of one
    image overlap, but each format's encoder is sized by its largest rendition."""
    return max((ENCODERS[fmt].memory_per_pixel * px for fmt, px in encodes), default=0)


def score_bytes(pixels: int) -> int:
    """The score step's working set for a largest scored rendition of ``pixels``."""
    return SCORE_FIXED_BYTES + SCORE_BYTES_PER_PIXEL * pixels if pixels else 0


def estimate(header: Header, decode_w: int, decode_h: int, *, encoders: int = 0) -> Cost:
    """Peak memory of decoding ``header``'s image to ``decode_w`` x ``decode_h`` and encoding
    its renditions (``encoders``: the encoders' own working set, ``encoder_bytes``)."""
    w, h = header.width, header.height
    pixels = w * h
    bands = max(1, header.bands)
    sample = max(1, header.sample_bytes)
    whole, how = decoded_whole(header)
    decode_pixels = pixels
    if header.format == "gif":
        source = GIF_BYTES_PER_PIXEL * pixels
    elif header.format == "heic":
        source = HEIC_BYTES_PER_PIXEL * sample * pixels
    elif header.format in HEIF_FORMATS:
        source = AVIF_DECODE_BYTES_PER_PIXEL * sample * pixels
    elif header.format == "jpeg" and header.interlaced:
        source = PROGRESSIVE_JPEG_BYTES_PER_SAMPLE * bands * pixels
    elif header.format == "jpeg":
        shrink = jpeg_shrink(w, h, decode_w, decode_h)
        decode_pixels = -(-w // shrink) * -(-h // shrink)
        source = STREAMED_ROWS * -(-w // shrink) * bands * sample
    elif header.format == "png" and header.interlaced:
        source = bands * sample * pixels
    elif header.format == "webp":
        decode_pixels = decode_w * decode_h
        source = pixels if header.has_alpha else 0  # the alpha plane, at full size
    else:  # PNG, TIFF: rows of the full width in flight
        source = STREAMED_ROWS * w * bands * sample
    memory = FIXED_BYTES + source + OUTPUT_BYTES_PER_PIXEL * decode_w * decode_h + encoders
    return Cost(memory_bytes=memory, whole=whole, how=how, decode_pixels=decode_pixels)


def estimate_motion(
    header: Header, decode_w: int, decode_h: int, animated: Iterable[int], *, encoders: int = 0
) -> Cost:
    """Peak memory of keeping ``header``'s animation animated: every frame decoded to
    ``decode_w`` x ``decode_h`` and held, every frame of each animated rendition (``animated``:
    their frame pixels; one the size of the decode shares its frames) held and encoded
    (the encodes overlap), and the poster's still renditions (``encoders`` as in estimate)."""
    frames = max(1, header.frames)
    decode = decode_w * decode_h
    sizes = set(animated)
    source = MOTION_SOURCE_BYTES_PER_PIXEL.get(header.format, 24) * header.width * header.height
    held = FRAME_BYTES_PER_PIXEL * frames * (decode + sum(px for px in sizes if px != decode))
    encoding = sum(
        ANIMATED_ENCODER_BYTES_PER_PIXEL * px + ANIMATED_OUTPUT_BYTES_PER_PIXEL * frames * px
        for px in sizes
    )
    memory = FIXED_BYTES + source + held + encoding + OUTPUT_BYTES_PER_PIXEL * decode + encoders
    name = BY_NAME[header.format].label if header.format in BY_NAME else header.format.upper()
    return Cost(
        memory_bytes=memory,
        whole=True,
        how=f"an animated {name} holds every frame",
        decode_pixels=frames * header.width * header.height,
    )


def human_bytes(n: int) -> str:
    """Bytes for people, in Lambda's units: 600 * MB -> '600 MB', 1300 * MB -> '1.3 GB'."""
    if n >= 1024 * MB:
        return f"{n / (1024 * MB):.1f} GB"
    return f"{max(1, round(n / MB))} MB"
