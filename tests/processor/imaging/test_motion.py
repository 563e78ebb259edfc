"""Animated uploads through the engine, against independent decodes of the real test files in
tests/samples (Pillow, wuffs, sharp, image-rs, libvips, libavif; sources and facts in
SOURCES.md and manifest.json).

Two checks per animation: the frames the decode step holds are the source's, pixel for pixel,
as Pillow composes them (read frame by frame from a fresh file: Pillow's APNG reader composes
"dispose to previous" wrongly when frames are read in turn); and the animated WebP rendition
plays the source: the same timeline (frames, delays as browsers play them, loop) and each
frame within the error of a still WebP of the same frame.
"""

from __future__ import annotations

import functools
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import Image

from processor.core.config import EngineConfig, Limits, RenditionSpec
from processor.imaging.decode import decode
from processor.imaging.engine import Engine, Result
from processor.imaging.pixels import Frames
from processor.imaging.plan import plan
from processor.imaging.probe import probe
from processor.imaging.sniff import sniff
from processor.imaging.spool import spool
from processor.rules.motion import played
from tests.conftest import GOOD, ROOT

pytestmark = pytest.mark.integration

SAMPLES = ROOT / "tests" / "samples"
MANIFEST = {f["file"]: f for f in json.loads((SAMPLES / "manifest.json").read_text())["files"]}
ANIMATED_FORMATS = {"gif", "webp", "apng", "avif-sequence"}
# Files no decoder here reads (libavif and libheif both refuse their alpha reference).
UNREADABLE = {"link-u/star-8bpc-with-alpha.avifs", "link-u/star-12bpc-with-alpha.avifs"}
ANIMATIONS = sorted(
    name
    for name, facts in MANIFEST.items()
    if facts["format"] in ANIMATED_FORMATS and facts.get("frames", 1) > 1 and name not in UNREADABLE
)

# Where Pillow is not what a browser shows, the frame is checked against the specification's
# numbers instead (test_the_known_divergences_from_pillow):
PILLOW_DIFFERS = {
    # disposal to background in frames without a transparent colour: Pillow paints black,
    # libvips the GIF's background colour (the GIF specification), browsers clear it
    "pillow/dispose_bgnd.gif",
    "pillow/dispose_bgnd_rgba.gif",
    # a first frame smaller than the canvas: Pillow fills the rest with the background
    # colour; libvips and browsers leave it transparent
    "image-rs/issue_1455_undersized.gif",
    # 1x1 frames on a 2x2 canvas with no transparent colour: libvips leaves the canvas black
    "wuffs/multiple-loop-counts.gif",
    # Pillow does not blend "over" for 16-bit and grey+alpha APNGs, and loses alpha when a
    # nearly transparent frame is blended over an opaque one
    "pillow/apng/mode_16bit.png",
    "pillow/apng/mode_grayscale_alpha.png",
    "pillow/apng/blend_op_over_near_transparent.png",
}

# WebP (animated) and JPEG (PNG with alpha: a lossless still, compared pixel for pixel).
WEBP_AND_STILL = EngineConfig(
    renditions=(
        RenditionSpec(
            name="full", folder="full", width=4096, height=4096, formats=("webp", "jpeg")
        ),
        RenditionSpec(name="small", folder="small", width=48, height=48, formats=("webp", "jpeg")),
    )
)


@functools.cache
def source_frames(path: Path) -> list[Image.Image]:
    """Every frame as Pillow shows it, each read from a fresh file, cut to the canvas (Pillow
    grows its canvas for a frame that reaches past it; browsers clip the frame)."""
    with Image.open(path) as image:
        count = getattr(image, "n_frames", 1)
        first = 1 if image.info.get("default_image") else 0  # APNG's IDAT outside the animation
        size = image.size
    frames = []
    for index in range(first, count):
        with Image.open(path) as image:
            image.seek(index)
            image.load()
            frames.append(image.convert("RGBA").crop((0, 0, *size)))
    return frames


def premultiplied(image: Image.Image) -> np.ndarray:
    """RGBA as floats with colour scaled by alpha: a transparent pixel's colour never counts."""
    a = np.asarray(image.convert("RGBA")).astype(float)
    a[..., :3] *= a[..., 3:4] / 255
    return a


def error(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of the premultiplied samples, in 8-bit levels."""
    return float(np.abs(premultiplied(a) - premultiplied(b)).mean())


def timeline(data: bytes) -> tuple[list[tuple[int, Image.Image]], int]:
    """An animated WebP's frames with their start times (ms), and its loop count."""
    image = Image.open(io.BytesIO(data))
    frames, start = [], 0
    for index in range(image.n_frames):
        image.seek(index)
        image.load()
        frames.append((start, image.convert("RGBA")))
        start += image.info["duration"]
    return frames, image.info.get("loop", 0)


def expected_loop(facts: dict[str, object]) -> int:
    """Plays, 0 = forever: GIF stores extra repeats (no extension: play once); WebP and APNG
    store plays; an AVIF sequence's edit list is not read (forever)."""
    if facts["format"] == "gif":
        loop = facts["loop"]
        return 1 if loop is None else 0 if loop == 0 else int(loop) + 1  # type: ignore[call-overload]
    if facts["format"] == "avif-sequence":
        return 0
    return int(facts["loop"])  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(WEBP_AND_STILL)


@pytest.fixture(scope="module")
def results(engine: Engine) -> dict[str, Result]:
    return {name: engine.process(SAMPLES / name, image_id="a") for name in ANIMATIONS}


def decoded_frames(path: Path, config: EngineConfig) -> Frames:
    with spool(path, 10**9) as spooled:
        header, _ = probe(spooled, sniff(spooled))
        frames = decode(spooled, plan(header, config), header)
    assert isinstance(frames, Frames)
    return frames


def frame_image(frames: Frames, index: int) -> Image.Image:
    frame = frames.frame(index)
    mode = "RGBA" if frame.bands == 4 else "RGB"
    return Image.frombytes(mode, (frame.width, frame.height), frame.write_to_memory())


@pytest.mark.parametrize("name", sorted(set(ANIMATIONS) - PILLOW_DIFFERS))
def test_the_decoded_frames_are_the_sources_as_composed(name: str) -> None:
    # GIVEN an animation, decoded at its own size (every disposal and blend method is among
    # the files: none, background, previous, previous on the first frame, source, over,
    # frames at offsets, transparency)
    frames = decoded_frames(SAMPLES / name, WEBP_AND_STILL)
    reference = source_frames(SAMPLES / name)
    # THEN every frame is the one the independent decoder composes, exactly
    assert frames.count == len(reference) == MANIFEST[name]["frames"]
    for index, want in enumerate(reference):
        got = frame_image(frames, index)
        # (premultiplying in floats rounds a partly transparent colour by less than a level)
        assert np.abs(premultiplied(got) - premultiplied(want)).max() < 1, index


@pytest.mark.parametrize("name", ANIMATIONS)
def test_the_record_says_frames_delays_and_loop(name: str, results: dict[str, Result]) -> None:
    facts, made = MANIFEST[name], results[name].facts
    assert made.animated and made.frames == facts["frames"]  # APNG: its real frame count
    assert made.loop == expected_loop(facts)
    assert made.duration_ms == sum(played(round(d or 0)) for d in facts["durations_ms"])
    assert made.still_reason is None


@pytest.mark.parametrize("name", ANIMATIONS)
def test_the_webp_rendition_plays_the_source(name: str, results: dict[str, Result]) -> None:
    facts = MANIFEST[name]
    reference = source_frames(SAMPLES / name)
    starts = [
        sum(played(round(d or 0)) for d in facts["durations_ms"][:i]) for i in range(len(reference))
    ]
    total = sum(played(round(d or 0)) for d in facts["durations_ms"])
    webps = [o for o in results[name].outputs if o.info.format == "webp"]
    assert {o.info.name for o in webps} == {"full", "small"}
    for output in webps:
        if not output.info.animated:
            # every frame came out alike at this size: libwebp writes one still, and the
            # record says so (the source is still animated: facts.animated)
            assert getattr(Image.open(io.BytesIO(output.data)), "n_frames", 1) == 1
            continue
        frames, loop = timeline(output.data)
        # the same timeline: libwebp merges a frame into the one before when they are alike
        # (adding its delay), so frames start only where source frames start, and end together
        assert loop == expected_loop(facts)
        assert {start for start, _ in frames} <= set(starts)
        assert len(frames) <= len(reference)
        assert sum_durations(output.data) == total
        _, last = frames[-1]
        assert last.size == (output.info.width, output.info.height)
        if name in PILLOW_DIFFERS or min(last.size) < 8:
            continue  # see test_the_known_divergences_from_pillow; lossy on 3 pixels says little
        for start, want in zip(starts, reference, strict=True):
            got = next(image for s, image in reversed(frames) if s <= start)
            if want.size != got.size:
                want = want.resize(got.size, Image.LANCZOS)  # premultiplied by Pillow too
            still = Image.open(io.BytesIO(webp_still(want)))
            # Tolerance: lossy WebP changes pixels (4:2:0 chroma on the saturated edges of these
            # synthetic frames moves some by 200 levels), so a frame is held to the error of a
            # still WebP of the same reference frame at the same settings, times 1.25 plus 3
            # levels for the rest: libvips' Lanczos-3 against Pillow's, and libwebp reusing a
            # near-identical pixel of the previous frame. A wrong disposal or a shifted frame
            # costs 25-95 levels on these files.
            assert error(got, want) <= 1.25 * error(still, want) + 3, (output.info.name, start)


def sum_durations(data: bytes) -> int:
    image = Image.open(io.BytesIO(data))
    total = 0
    for index in range(image.n_frames):
        image.seek(index)
        image.load()
        total += image.info["duration"]
    return total


def webp_still(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=80, method=4)
    return out.getvalue()


def test_the_known_divergences_from_pillow() -> None:
    # GIF disposal to background without a transparent colour: the first moved square's
    # place in frame 2 is clear, as browsers show it (Pillow and libnsgif fill the GIF's
    # background colour (30, 144, 255), as the GIF specification says)
    frames = decoded_frames(SAMPLES / "pillow/dispose_bgnd.gif", WEBP_AND_STILL)
    assert frame_image(frames, 2).getpixel((20, 20))[3] == 0
    # a first frame smaller than the canvas leaves the rest transparent, as in browsers
    frames = decoded_frames(SAMPLES / "image-rs/issue_1455_undersized.gif", WEBP_AND_STILL)
    assert frame_image(frames, 0).getpixel((75, 75))[3] == 0
    # APNG "over": a half-transparent blue over opaque black is opaque dark blue (the APNG
    # specification's formula), in 16-bit and in grey+alpha alike
    frames = decoded_frames(SAMPLES / "pillow/apng/mode_16bit.png", WEBP_AND_STILL)
    assert frame_image(frames, 1).getpixel((64, 32)) == (0, 0, 128, 255)
    frames = decoded_frames(SAMPLES / "pillow/apng/mode_grayscale_alpha.png", WEBP_AND_STILL)
    assert frame_image(frames, 1).getpixel((64, 32)) == (128, 128, 128, 255)
    # 127 nearly transparent green frames over opaque green stay opaque green
    frames = decoded_frames(
        SAMPLES / "pillow/apng/blend_op_over_near_transparent.png", WEBP_AND_STILL
    )
    assert {frame_image(frames, i).getpixel((0, 0)) for i in range(frames.count)} == {
        (0, 255, 0, 255)
    }


def test_transparency_is_kept(results: dict[str, Result]) -> None:
    for name in (
        "sharp/rotating-squares.gif",
        "sharp/rotating-squares.webp",
        "pillow/apng/dispose_op_background.png",
    ):
        for output in results[name].outputs:
            options = {"n": -1} if output.info.animated else {}
            image = pyvips.Image.new_from_buffer(output.data, "", **options)
            assert image.bands == 4, (name, output.info.key)
            if output.info.animated:  # (the poster frame itself may be opaque)
                assert image.extract_band(3).min() == 0, (name, output.info.key)
        webp = next(o for o in results[name].outputs if o.info.animated)
        assert Image.open(io.BytesIO(webp.data)).mode == "RGBA"  # the file says it has alpha


def test_the_still_renditions_show_the_poster_frame(results: dict[str, Result]) -> None:
    r = results["sharp/animated-loop-3.gif"]
    still = next(o for o in r.outputs if o.info.name == "full" and not o.info.animated)
    assert still.info.format == "png"  # the GIF has transparency
    first = source_frames(SAMPLES / "sharp/animated-loop-3.gif")[0]
    assert error(Image.open(io.BytesIO(still.data)), first) == 0


def test_a_configured_poster_frame() -> None:
    config = WEBP_AND_STILL.model_copy(update={"poster_frame": 3})
    r = Engine(config).process(SAMPLES / "wuffs/animated-red-blue.gif", image_id="p")
    still = next(o for o in r.outputs if o.info.name == "full" and not o.info.animated)
    frames = source_frames(SAMPLES / "wuffs/animated-red-blue.gif")
    shown = Image.open(io.BytesIO(still.data))
    assert error(shown, frames[3]) == 0 and error(shown, frames[0]) > 1


def test_a_cover_crop_cuts_the_same_box_out_of_every_frame() -> None:
    # GIVEN a 370x285 animation and a 96x96 cover rendition, cropped in the centre and by
    # attention (the box chosen once, on the poster frame)
    name = "sharp/animated-loop-3.gif"
    reference = source_frames(SAMPLES / name)
    scaled = [f.resize((125, 96), Image.LANCZOS) for f in reference]  # covers 96x96
    for mode in ("centre", "attention"):
        spec = RenditionSpec(
            name="sq", folder="sq", width=96, height=96, fit="cover", crop=mode, formats=("webp",)
        )
        r = Engine(EngineConfig(renditions=(spec,))).process(SAMPLES / name, image_id="c")
        (webp,) = [o for o in r.outputs if o.info.animated]
        played_frames, _ = timeline(webp.data)
        assert (webp.info.width, webp.info.height) == (96, 96)
        # each source frame (3 s apart) against the WebP frame shown at its start
        frames = [
            (start, next(img for s, img in reversed(played_frames) if s <= start))
            for start in range(0, 30_000, 3000)
        ]
        # THEN one offset explains every frame (centre: the middle, 14 px in)
        offsets = range(0, 125 - 96 + 1)

        def off_by(left: int, frames: list[tuple[int, Image.Image]] = frames) -> float:
            return max(
                error(got, want.crop((left, 0, left + 96, 96)))
                for (_, got), want in zip(frames, scaled, strict=True)
            )

        best = min(offsets, key=off_by)
        if mode == "centre":
            assert best == (125 - 96) // 2
        for (_, got), want in zip(frames, scaled, strict=True):
            still = Image.open(io.BytesIO(webp_still(want.crop((best, 0, best + 96, 96)))))
            cut = want.crop((best, 0, best + 96, 96))
            assert error(got, cut) <= 1.25 * error(still, cut) + 3


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        ({"max_animation_pixels": 370 * 285 * 9}, "too_many_pixels"),
        ({"max_animation_ms": 40_000}, "too_long"),
        ({"max_image_memory": 20 * 1024 * 1024}, "too_costly"),
    ],
)
def test_a_gif_over_a_motion_limit_gets_a_still_and_a_reason(
    limits: dict[str, int], code: str
) -> None:
    # GIVEN the 10-frame, 42-second, 370x285 GIF and a limit it is over (the still fits)
    config = EngineConfig(renditions=WEBP_AND_STILL.renditions, limits=Limits(**limits))
    r = Engine(config).process(GOOD / "animated-loop-3.gif", image_id="l")
    # THEN it is done, every rendition a still of the first frame, and the record says why
    assert r.facts.animated and r.facts.frames == 10
    assert r.facts.still_reason is not None and r.facts.still_reason.code == code
    assert r.facts.still_reason.message
    first = source_frames(GOOD / "animated-loop-3.gif")[0]
    for output in r.outputs:
        image = pyvips.Image.new_from_buffer(output.data, "")
        assert not output.info.animated and image.get_n_pages() == 1
        if output.info.name == "full":
            assert error(Image.open(io.BytesIO(output.data)), first) <= 2  # lossy WebP or PNG


def test_animation_turned_off_in_the_config_is_todays_still() -> None:
    specs = tuple(s.model_copy(update={"animated": False}) for s in WEBP_AND_STILL.renditions)
    off = Engine(EngineConfig(renditions=specs)).process(
        GOOD / "animated-loop-3.webp", image_id="o"
    )
    assert off.facts.still_reason is not None and off.facts.still_reason.code == "turned_off"
    assert not any(o.info.animated for o in off.outputs)


def test_an_avif_sequence_kept_still_is_its_first_frame_not_damaged() -> None:
    # libvips' loader guess refuses the avis brand; the still comes from the explicit loader
    specs = tuple(s.model_copy(update={"animated": False}) for s in WEBP_AND_STILL.renditions)
    r = Engine(EngineConfig(renditions=specs)).process(
        SAMPLES / "link-u/star-8bpc.avifs", image_id="s"
    )
    assert r.facts.format == "avif" and r.facts.frames == 5
    first = source_frames(SAMPLES / "link-u/star-8bpc.avifs")[0]
    full = next(o for o in r.outputs if o.info.name == "full" and o.info.format == "jpeg")
    assert error(Image.open(io.BytesIO(full.data)), first) < 3  # JPEG q82


def test_a_plain_png_is_no_animation() -> None:
    r = Engine(WEBP_AND_STILL).process(GOOD / "with-alpha.png", image_id="p")
    assert not r.facts.animated and r.facts.frames == 1 and r.facts.duration_ms is None


def _gif_growing_from_a_corner(path: Path) -> Path:
    """Three opaque 4x4 frames, no transparent colour, on an 8x8 screen: at (0,0), (4,0) and
    (0,4). Browsers show what no frame has painted yet as transparent."""
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=100,
        disposal=1,
        optimize=False,
        loop=0,
    )
    data = bytearray(buffer.getvalue())
    struct.pack_into("<HH", data, 6, 8, 8)  # the logical screen, larger than any frame
    descriptor = b"\x2c\x00\x00\x00\x00\x04\x00\x04\x00"
    starts = [i for i in range(len(data)) if data[i : i + 9] == descriptor]
    assert len(starts) == 3
    struct.pack_into("<HH", data, starts[1] + 1, 4, 0)
    struct.pack_into("<HH", data, starts[2] + 1, 0, 4)
    path.write_bytes(bytes(data))
    return path


def test_a_gif_canvas_no_frame_has_painted_yet_stays_transparent(tmp_path: Path) -> None:
    source = _gif_growing_from_a_corner(tmp_path / "corner.gif")
    frames = decoded_frames(source, WEBP_AND_STILL)
    painted = [(0, 0), (4, 0), (0, 4)]
    for index in range(3):
        alpha = np.asarray(frame_image(frames, index))[..., 3]
        for n, (left, top) in enumerate(painted):
            expected = 255 if n <= index else 0
            assert (alpha[top : top + 4, left : left + 4] == expected).all(), (index, n)
        assert (alpha[4:, 4:] == 0).all()  # never painted
    # ... and the animated rendition keeps it
    result = Engine(WEBP_AND_STILL).process(source, image_id="a")
    webp = next(o for o in result.outputs if o.info.animated)
    played_frames = pyvips.Image.new_from_buffer(webp.data, "", n=-1)
    assert played_frames.bands == 4
    assert (
        played_frames.crop(0, 0, played_frames.width, played_frames.width).extract_band(3).max() > 0
    )
    assert (
        played_frames.crop(0, 0, played_frames.width, played_frames.width).extract_band(3).min()
        == 0
    )


def _srgb_from_display_p3(rgb: tuple[int, int, int]) -> np.ndarray:
    """An independent conversion: sRGB's transfer, Display P3 to sRGB primaries (D65)."""
    c = np.asarray(rgb, dtype=float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    p3_to_srgb = np.array(
        [[1.2249, -0.2247, 0.0], [-0.0420, 1.0419, 0.0], [-0.0197, -0.0786, 1.0979]]
    )
    out = np.clip(p3_to_srgb @ linear, 0, 1)
    return 255 * np.where(out <= 0.0031308, out * 12.92, 1.055 * out ** (1 / 2.4) - 0.055)


def test_an_avif_sequence_in_display_p3_is_converted_frame_by_frame(tmp_path: Path) -> None:
    colours = [(180, 120, 100), (100, 150, 120)]
    buffer = io.BytesIO()
    first, *rest = (Image.new("RGB", (16, 16), c) for c in colours)
    first.save(buffer, "AVIF", save_all=True, append_images=rest, duration=100, quality=100)
    data = buffer.getvalue()
    # libavif wrote BT.709 primaries (1) in both colr boxes (the still's and the track's):
    # say Display P3 (12) instead, as Apple's files do.
    marker = b"colrnclx\x00\x01"
    assert data.count(marker) == 2
    source = tmp_path / "p3.avif"
    source.write_bytes(data.replace(marker, b"colrnclx\x00\x0c"))

    frames = decoded_frames(source, WEBP_AND_STILL)
    for index, colour in enumerate(colours):
        got = np.asarray(frame_image(frames, index))[8, 8, :3].astype(float)
        expected = _srgb_from_display_p3(colour)
        assert np.abs(got - expected).max() <= 4, (index, got, expected)
        assert np.abs(got - np.asarray(colour)).max() >= 10  # converted, not passed through
