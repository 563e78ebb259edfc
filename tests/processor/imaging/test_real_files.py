"""Real files from public test suites (tests/samples/SOURCES.md): every one either done with
the pixels an independent decoder sees, or refused with the code that tells the truth
(``unsupported_format`` naming the codec or layout for a valid file this build cannot decode,
never ``corrupt_image``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
import pyvips
from PIL import Image, ImageCms

from processor.core.config import EngineConfig, RenditionSpec
from processor.core.errors import ImageRejected
from processor.imaging import blank
from processor.imaging import hdr as hdr_curves
from processor.imaging.engine import Engine, Result
from processor.imaging.spool import spool
from tests.processor.imaging import heic_samples as hs

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CONFIG = EngineConfig(
    renditions=(RenditionSpec(name="o", folder="o", width=2048, height=2048, formats=("png",)),)
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(CONFIG)


def _pixels(result: Result) -> np.ndarray:
    out = pyvips.Image.new_from_buffer(result.outputs[-1].data, "")
    return np.asarray(out.numpy(), dtype=float)


def _refusal(engine: Engine, name: str) -> ImageRejected:
    with pytest.raises(ImageRejected) as e:
        engine.process(SAMPLES / name, image_id="x")
    return e.value


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("image-tiff/libtiffpic/zackthecat.tif", "old-style JPEG"),  # tiles: decoded all zero
        ("pillow/old-style-jpeg-compression.tif", "old-style JPEG"),
        ("pillow/hopper_lzma.tif", "LZMA compression"),
        ("image-tiff/int16_zstd.tif", "ZSTD compression"),
        ("pillow/tiff_tiled_planar_lzw.tiff", "separate colour planes in tiles"),
        ("pillow/hopper.Lab.tif", "8-bit CIELAB"),
        ("pillow/12bit.cropped.tif", "12-bit samples"),
        ("image-tiff/libtiffpic/caspian.tif", "64-bit samples"),
        ("pillow/10ct_32bit_128.tiff", "no PhotometricInterpretation tag"),
    ],
)
def test_tiffs_this_build_cannot_decode_are_named(engine: Engine, name: str, named: str) -> None:
    refused = _refusal(engine, name)
    assert refused.code == "unsupported_format"
    assert f"TIFF with {named}" in refused.message
    assert "damaged" not in refused.message


def test_float_tiff_from_0_to_1_is_not_black(engine: Engine) -> None:
    name = "image-tiff/gradient-1c-32b-float.tiff"
    expected = np.asarray(Image.open(SAMPLES / name), dtype=float) * 255
    got = _pixels(engine.process(SAMPLES / name, image_id="x"))
    assert got.shape[:2] == expected.shape
    assert np.abs(got[..., 0] - expected).max() <= 1


def test_signed_8_bit_tiff_is_offset_not_clipped(engine: Engine) -> None:
    name = "image-tiff/int8.tif"
    signed = pyvips.Image.tiffload(str(SAMPLES / name)).numpy().astype(float)
    assert signed.min() < 0  # the sample really is signed
    got = _pixels(engine.process(SAMPLES / name, image_id="x"))
    assert np.abs(got[..., 0] - (signed + 128)).max() <= 1


def test_signed_rgb_tiff_keeps_its_range(engine: Engine) -> None:
    got = _pixels(engine.process(SAMPLES / "image-tiff/int8_rgb.tif", image_id="x"))
    assert got.min() < 16 and got.max() > 240  # not clipped at the signed zero


@pytest.mark.parametrize(
    ("name", "bits"),
    [("L_8__29x100.heif", 8), ("L_10__29x100.heif", 10), ("L_12__29x100.heif", 12)],
)
def test_greyscale_heic_decodes(engine: Engine, name: str, bits: int) -> None:
    path = SAMPLES / "pillow-heif" / name
    heif = pillow_heif.open_heif(path)
    reference = np.asarray(heif[heif.primary_index], dtype=float)
    if reference.dtype != np.uint8 and bits > 8:
        reference = reference / 257
    result = engine.process(path, image_id="x")
    got = _pixels(result)
    assert got.shape[:2] == reference.shape[:2]
    assert np.abs(got[..., 0] - reference).mean() < 1.5
    assert result.facts.bits_per_sample == bits


def test_greyscale_heic_with_alpha_keeps_its_alpha(engine: Engine) -> None:
    result = engine.process(SAMPLES / "pillow-heif/LA_8__29x100.heif", image_id="x")
    assert result.facts.has_alpha
    assert _pixels(result).shape[2] == 4


def test_ten_and_twelve_bit_sources_report_their_depth(engine: Engine) -> None:
    for name, bits in (
        ("link-u/fox.profile0.10bpc.yuv420.avif", 10),
        ("link-u/fox.profile2.12bpc.yuv444.avif", 12),
        ("pillow-heif/RGB_10__29x100.heif", 10),
    ):
        assert engine.process(SAMPLES / name, image_id="x").facts.bits_per_sample == bits, name


def test_a_200_megapixel_heic_in_822_tiles_is_too_many_pixels(engine: Engine) -> None:
    """libheif will not open it (822 items, its limit 256); the size is in the boxes."""
    refused = _refusal(engine, "pillow-heif/200MP.heic")
    assert refused.code == "too_many_pixels"
    assert "16320x12240" in refused.message


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("libheif/uncompressed_comp_RGB.heif", "uncompressed ('unci') image items"),
        ("libheif/rgb_generic_compressed_zlib.heif", "uncompressed ('unci') image items"),
        ("libheif/seq_seed.heif", "image sequences without a still image"),
    ],
)
def test_heifs_this_build_cannot_decode_are_named(engine: Engine, name: str, named: str) -> None:
    refused = _refusal(engine, name)
    assert refused.code == "unsupported_format"
    assert named in refused.message


def test_display_p3_avif_described_by_nclx_is_converted_to_srgb(engine: Engine) -> None:
    """Apple-style AVIF: Display P3 in nclx, no ICC. The independent decode: Pillow's libavif
    (P3 values as coded) through LittleCMS from the Display P3 profile to sRGB."""
    path = SAMPLES / "av1-avif/animals_00_singlelayer.avif"
    coded = Image.open(path).convert("RGB")
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(hs.display_p3_icc()))
    srgb = ImageCms.createProfile("sRGB")
    reference = np.asarray(ImageCms.profileToProfile(coded, p3, srgb, renderingIntent=1))
    got = _pixels(engine.process(path, image_id="x"))
    error = np.abs(got - reference.astype(float))
    assert error.mean() < 2.5
    assert np.percentile(error, 99) <= 10


# The publisher's SDR grade of the same picture (libavif tests/data/README.md).
HDR_PAIRS = [
    ("libavif/colors_hdr_rec2020.avif", "libavif/colors_sdr_srgb.avif"),
    ("libavif/colors_hdr_p3.avif", "libavif/colors_sdr_srgb.avif"),
    ("libavif/seine_hdr_rec2020.avif", "libavif/seine_sdr_gainmap_srgb.avif"),
]


def _saturation(pixels: np.ndarray) -> float:
    return float((pixels[..., :3].max(-1) - pixels[..., :3].min(-1)).mean())


@pytest.mark.parametrize(("hdr", "sdr"), HDR_PAIRS)
def test_hdr_avif_is_tone_mapped_near_the_publishers_sdr_grade(
    engine: Engine, hdr: str, sdr: str
) -> None:
    """PQ BT.2020 / P3 AVIF: within 18 levels (mean) of the SDR grade (docs/formats.md, "HDR");
    without tone mapping the same files were 45 to 64 levels off, grey and flat."""
    got = _pixels(engine.process(SAMPLES / hdr, image_id="x"))
    reference = np.asarray(pyvips.Image.heifload(str(SAMPLES / sdr)).numpy(), dtype=float)
    assert got.shape == reference.shape
    assert np.abs(got - reference).mean() < 18
    assert abs(_saturation(got) - _saturation(reference)) < 0.15 * _saturation(reference)


def test_hdr_heic_is_tone_mapped_too(engine: Engine, tmp_path: Path) -> None:
    """A 10-bit PQ BT.2020 HEIC made from the HDR AVIF's own samples."""
    coded = pyvips.Image.heifload(str(SAMPLES / HDR_PAIRS[0][0]))
    heif = pillow_heif.from_bytes(
        mode="RGB;16", size=(coded.width, coded.height), data=coded.write_to_memory()
    )
    heif.info["nclx_profile"] = {
        "color_primaries": 9,
        "transfer_characteristics": 16,
        "matrix_coefficients": 9,
        "full_range_flag": 1,
    }
    path = tmp_path / "pq.heic"
    heif.save(path, quality=95)
    got = _pixels(engine.process(path, image_id="x"))
    reference = np.asarray(pyvips.Image.heifload(str(SAMPLES / HDR_PAIRS[0][1])).numpy())
    assert np.abs(got - reference.astype(float)).mean() < 18


def test_a_gif_whose_first_frame_is_one_pixel_shows_the_canvas_transparent(
    engine: Engine,
) -> None:
    """A 1x1 frame at (3, 2) on a 5x5 canvas, no transparent colour: browsers show one blue
    pixel on a transparent canvas; libvips alone painted the rest black."""
    result = engine.process(SAMPLES / "wuffs/small-frame-interlaced.gif", image_id="x")
    got = _pixels(result)
    assert result.facts.has_alpha
    assert got.shape == (5, 5, 4)
    opaque = np.argwhere(got[..., 3] > 0)
    assert opaque.tolist() == [[2, 3]]
    assert got[2, 3].tolist() == [0, 0, 255, 255]


def test_a_blank_decode_that_another_decoder_sees_as_a_picture_is_refused() -> None:
    """libvips decodes old-style JPEG in tiles to all-zero pixels, with no error (the engine
    refuses that codec earlier, from IFD0; this is the guard behind it)."""
    path = SAMPLES / "image-tiff/libtiffpic/zackthecat.tif"
    decoded = pyvips.Image.tiffload(str(path))
    assert blank.is_blank(decoded)
    with spool(path, 10**9) as spooled, pytest.raises(ImageRejected) as e:
        blank.check(decoded, spooled, "tiff", decoded.width * decoded.height)
    assert e.value.code == "unsupported_format"
    assert "blank" in e.value.message


def test_a_really_blank_image_is_done(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "black.tif"
    Image.new("RGB", (40, 30), (0, 0, 0)).save(path)
    assert engine.process(path, image_id="x").outputs
    spacer = tmp_path / "spacer.tif"
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(spacer)
    assert engine.process(spacer, image_id="x").outputs


def _sdr_level(transfer: int, code: float) -> float:
    grey = (pyvips.Image.black(4, 4, bands=3) + code * 65535).cast("ushort")
    out = hdr_curves.to_sdr(
        grey.copy(interpretation="rgb16"), {"transfer_characteristics": transfer}, None
    )
    return float(out.avg())


def test_the_hdr_operator_maps_reference_white_and_the_peak_as_documented() -> None:
    """BT.2408: HDR reference white (203 nits) is PQ 58 % and HLG 75 % (on a 1000-nit display):
    both land on the same SDR level, Reinhard's half-way point in linear light (sRGB about
    190); the 1000-nit peak (PQ 75.2 %, HLG 100 %) lands on white."""
    pq_white, hlg_white = _sdr_level(hdr_curves.PQ, 0.58), _sdr_level(hdr_curves.HLG, 0.75)
    assert abs(pq_white - hlg_white) <= 4
    assert 182 <= pq_white <= 198
    assert _sdr_level(hdr_curves.PQ, 0.7518) >= 253
    assert _sdr_level(hdr_curves.HLG, 1.0) >= 253


def test_heif_in_its_low_overhead_form_is_named(engine: Engine) -> None:
    refused = _refusal(engine, "libheif/lightning_mini.heif")
    assert refused.code == "unsupported_format"
    assert "low-overhead form (brand mif3)" in refused.message
