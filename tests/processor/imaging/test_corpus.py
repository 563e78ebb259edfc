"""The engine on real images from ../shared/corpus: dimensions, colour, metadata, refusals."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import pyvips

from processor.core.config import EngineConfig, Limits, RenditionSpec
from processor.core.errors import ImageRejected, ImageTooLarge
from processor.imaging.engine import Engine, Output, Result
from tests.conftest import BAD, BAD_CODES, GOOD, bad_files, good_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(EngineConfig())


@pytest.fixture(scope="module")
def results(engine: Engine) -> dict[str, Result]:
    return {p.name: engine.process(p, image_id="img") for p in good_files()}


def load(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_every_good_file_is_processed(results: dict[str, Result]) -> None:
    assert len(results) == len(good_files()) >= 40
    for name, r in results.items():
        names = {o.info.name for o in r.outputs}
        assert names == {"thumb", "optimized"}, name
        formats = {o.info.format for o in r.outputs}
        expected = {"png", "webp", "avif"} if r.facts.has_alpha else {"jpeg", "webp", "avif"}
        assert formats == expected, name
        for o in r.outputs:
            box = 320 if o.info.name == "thumb" else 2048
            assert 1 <= o.info.width <= box and 1 <= o.info.height <= box, name
            # never upscaled
            assert o.info.width <= r.facts.width and o.info.height <= r.facts.height, name
            # the bytes are what the record says
            im = load(o.data)
            assert (im.width, im.height) == (o.info.width, o.info.height), name
            assert o.info.bytes == len(o.data)


@pytest.mark.parametrize(
    ("name", "size", "thumb"),
    [
        ("2569067123_aca715a2ee_o.jpg", (2725, 2225), (320, 261)),
        ("flowers.jpeg", (1920, 1080), (320, 180)),
        ("giant-image.jpg", (20000, 14000), (320, 224)),
        ("Portrait_6.jpg", (450, 600), (240, 320)),
        ("Landscape_6.jpg", (600, 450), (320, 240)),
        ("big-height.webp", (13, 169), (13, 169)),
        ("2x2_fdcce6.png", (2, 2), (2, 2)),
        ("pitm.avif", (4096, 800), (320, 62)),
        ("G31D.TIF", (2464, 3248), (243, 320)),
    ],
)
def test_dimensions(
    results: dict[str, Result], name: str, size: tuple[int, int], thumb: tuple[int, int]
) -> None:
    r = results[name]
    assert (r.facts.width, r.facts.height) == size
    t = next(o for o in r.outputs if o.info.name == "thumb")
    assert (t.info.width, t.info.height) == thumb


def test_outputs_are_8bit_srgb_without_metadata(results: dict[str, Result]) -> None:
    for name, r in results.items():
        for o in r.outputs:
            im = load(o.data)
            fields = set(im.get_fields())
            assert im.interpretation == "srgb", (name, o.info.key, im.interpretation)
            assert im.format == "uchar", name
            assert im.bands in (3, 4), name
            assert not fields & {"exif-data", "xmp-data", "iptc-data", "icc-profile-data"}, name
            assert not any(f.startswith("exif-") for f in fields), name
            # belt and braces: no metadata block survives in the raw bytes
            for marker in (b"Exif\x00\x00", b"http://ns.adobe.com/xap", b"Photoshop 3.0"):
                assert marker not in o.data, (name, marker)


def mean_diff(a: bytes, b: bytes) -> float:
    x, y = load(a), load(b)
    assert (x.width, x.height) == (y.width, y.height)
    return float((x - y).abs().avg())


def test_exif_orientations_all_give_the_same_upright_image(results: dict[str, Result]) -> None:
    def optimized(name: str) -> Output:
        return next(
            o
            for o in results[name].outputs
            if o.info.format == "jpeg" and o.info.name == "optimized"
        )

    # 2..8 carry the same ICC profile as each other; 1 carries none (so colour differs a bit).
    ref = optimized("Landscape_2.jpg")
    assert (ref.info.width, ref.info.height) == (600, 450)
    mirrored = load(ref.data).fliphor().jpegsave_buffer()
    assert mean_diff(ref.data, mirrored) > 25  # what a wrong orientation would look like
    for n in range(1, 9):
        r = results[f"Landscape_{n}.jpg"]
        assert r.facts.orientation == n
        assert mean_diff(ref.data, optimized(f"Landscape_{n}.jpg").data) < 10, n


def test_wide_gamut_and_cmyk_become_srgb(results: dict[str, Result]) -> None:
    p3 = results["p3.png"]
    assert p3.facts.icc_description == "Display P3"
    assert results["prophoto.png"].facts.icc_description == "ProPhoto RGB"
    cmyk = results["Channel_digital_image_CMYK_color.jpg"]
    no_profile = results["Channel_digital_image_CMYK_color_no_profile.jpg"]
    assert cmyk.facts.colour_space == no_profile.facts.colour_space == "cmyk"
    a = next(o for o in cmyk.outputs if o.info.key.endswith(".jpg") and o.info.name == "thumb")
    b = next(o for o in no_profile.outputs if o.info.key == a.info.key)
    # the same picture through an embedded and a fallback profile: close, not inverted
    assert mean_diff(a.data, b.data) < 40
    lab = results["cielab-dagams.tiff"]
    assert lab.facts.colour_space == "labs" and lab.facts.bits_per_sample == 16


def test_alpha_kept_or_flattened(results: dict[str, Result]) -> None:
    r = results["full-transparent.png"]
    assert r.facts.has_alpha
    png = next(o for o in r.outputs if o.info.format == "png")
    assert load(png.data).bands == 4
    grey = results["16-bit-grey-alpha.png"]
    assert grey.facts.bits_per_sample == 16 and grey.facts.has_alpha
    assert all(load(o.data).bands == 4 for o in grey.outputs)


def test_animated_stays_animated_in_webp_with_a_still_poster(results: dict[str, Result]) -> None:
    # (frame by frame against an independent decode: tests/processor/imaging/test_motion.py)
    for name in ("animated-loop-3.gif", "animated-loop-3.webp"):
        r = results[name]
        assert r.facts.frames == 10 and r.facts.animated and r.facts.loop == 3
        assert r.facts.duration_ms == 9 * 3000 + 15000
        for o in r.outputs:
            im = load(o.data)
            pages = im.get("n-pages") if "n-pages" in im.get_fields() else 1
            assert o.info.animated is (o.info.format == "webp")
            assert pages == (10 if o.info.animated else 1) and im.height == o.info.height


def test_metadata_fields(results: dict[str, Result]) -> None:
    r = results["Landscape_9.jpg"]
    assert r.facts.captured_at == "2016-07-02T07:34:02"
    assert len(r.facts.sha256) == 64
    assert r.facts.input_bytes == (GOOD / "Landscape_9.jpg").stat().st_size
    for res in results.values():
        assert res.facts.dominant_color is not None and len(res.facts.dominant_color) == 7
        assert res.facts.placeholder is not None and len(res.facts.placeholder) == 28


@pytest.mark.parametrize("path", bad_files(), ids=lambda p: p.name)
def test_bad_files_are_refused_with_their_code(engine: Engine, path: Path) -> None:
    with pytest.raises(ImageRejected) as e:
        engine.process(path, image_id="bad")
    assert e.value.code == BAD_CODES[path.name]
    assert not e.value.retryable
    assert len(e.value.message) > 10


def test_bomb_refused_in_few_mb() -> None:
    # A fresh interpreter, so its peak RSS is this refusal's alone.
    code = (
        "import resource, json\n"
        "from processor.imaging.engine import Engine\n"
        "from processor.core.config import EngineConfig\n"
        "from processor.core.errors import PipelineError\n"
        "e = Engine(EngineConfig())\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"try:\n    e.process({str(BAD / '65536-uint32-limit.png')!r}, image_id='x')\n"
        "except PipelineError as err:\n    code = err.code\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'code': code, 'grew_kb': after - before}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["code"] == "too_many_pixels"
    assert result["grew_kb"] < 20 * 1024  # a decode would need 12 GB


class OneShotStream(io.RawIOBase):
    """A stream that can be read once and never seeks, like an S3 body or a socket."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_stream_input_matches_path_input(engine: Engine) -> None:
    path = GOOD / "flowers.jpeg"
    from_path = engine.process(path, image_id="s")
    from_stream = engine.process(OneShotStream(path.read_bytes()), image_id="s")
    assert from_stream.facts == from_path.facts
    assert [o.info for o in from_stream.outputs] == [o.info for o in from_path.outputs]


def test_stream_over_the_byte_limit_is_refused_and_cleaned(tmp_path: Path) -> None:
    engine = Engine(EngineConfig(limits=Limits(max_input_bytes=50_000)), tmp_dir=str(tmp_path))
    with pytest.raises(ImageTooLarge):
        engine.process(OneShotStream((GOOD / "flowers.jpeg").read_bytes()), image_id="s")
    assert list(tmp_path.iterdir()) == []


def test_empty_upload(engine: Engine) -> None:
    with pytest.raises(ImageRejected) as e:
        engine.process(io.BytesIO(b""), image_id="e")
    assert e.value.code == "empty_image"


def test_versioned_keys_and_avif_opt_in() -> None:
    spec = RenditionSpec(
        name="small", folder="small", width=64, height=64, formats=("avif", "jpeg")
    )
    engine = Engine(EngineConfig(renditions=(spec,)))
    r = engine.process(GOOD / "320x240.jpg", image_id="abc", versioned=True)
    assert r.content_version
    keys = sorted(o.info.key for o in r.outputs)
    assert keys == [f"small/abc-{r.content_version}.avif", f"small/abc-{r.content_version}.jpg"]
    avif = next(o for o in r.outputs if o.info.format == "avif")
    assert avif.info.content_type == "image/avif"
    assert load(avif.data).get("vips-loader").startswith("heif")


def test_cover_rendition_is_exact(engine: Engine) -> None:
    spec = RenditionSpec(name="sq", folder="sq", width=100, height=100, fit="cover")
    r = Engine(EngineConfig(renditions=(spec,))).process(GOOD / "flowers.jpeg", image_id="c")
    assert {(o.info.width, o.info.height) for o in r.outputs} == {(100, 100)}
