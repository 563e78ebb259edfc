"""JPEGs decoded by the engine's own path (processor/imaging/decode.py ``decode_jpeg``: CMYK through
the kept LittleCMS transforms of processor/imaging/cms.py, large photos with libjpeg's larger
shrink-on-load) give what libvips' ``thumbnail(export_profile="srgb")`` gives: the same size,
upright, and the same picture within a few levels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pyvips

from processor.core.config import EngineConfig
from processor.imaging import cms
from processor.imaging.decode import _own_jpeg_decode, decode
from processor.imaging.pixels import hold, to_srgb
from processor.imaging.probe import probe
from processor.imaging.sniff import sniff
from processor.imaging.spool import spool
from processor.imaging.vips import init_vips
from processor.rules.plan import make_plan
from tests.conftest import GOOD

pytestmark = pytest.mark.integration

CMYK = ("Channel_digital_image_CMYK_color.jpg", "Channel_digital_image_CMYK_color_no_profile.jpg")


@pytest.fixture(scope="module", autouse=True)
def _vips() -> None:
    init_vips()


def _libvips_decode(path: Path, width: int, height: int) -> pyvips.Image:
    image = pyvips.Image.thumbnail(
        str(path), width, height=height, size="down", export_profile="srgb"
    )
    if (image.width, image.height) != (width, height):
        # thumbnail may round a side its own way: the engine then resizes it as derive does.
        image = image.thumbnail_image(width, height=height, size="force")
    return hold(to_srgb(image)).image


@pytest.mark.parametrize("name", CMYK)
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_cmyk_jpeg_matches_libvips(tmp_path: Path, name: str, orientation: int) -> None:
    # 2.5x the corpus file (1250x833): no shrink-on-load, a resize down to the 750 box.
    image = pyvips.Image.new_from_file(str(GOOD / name)).resize(2.5).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    path = tmp_path / name
    image.jpegsave(str(path), Q=90, keep="icc,exif" if "no_profile" not in name else "exif")
    config = EngineConfig.model_validate(
        {"renditions": [{"name": "big", "folder": "big", "width": 750, "height": 750}]}
    )
    with spool(path, 10**9) as spooled:
        header, _ = probe(spooled, sniff(spooled))
        assert header.interpretation == "cmyk" and header.orientation == orientation
        plan = make_plan(header, config)
        ours = decode(spooled, plan, header).image
    theirs = _libvips_decode(path, plan.decode_width, plan.decode_height)
    assert (ours.width, ours.height, ours.bands) == (theirs.width, theirs.height, 3)
    assert ours.interpretation == "srgb"
    diff = (ours.cast("int") - theirs.cast("int")).abs()
    # The resize runs in CMYK here, in PCS there: edges of this chart's saturated patches
    # differ by a level or so on average; a wrong turn or an inverted ink would be tens.
    assert diff.avg() < 2, diff.avg()


def _psnr(a: pyvips.Image, b: pyvips.Image) -> float:
    d = a.cast("float") - b.cast("float")
    mse = (d * d).avg()
    return 10 * math.log10(255 * 255 / mse) if mse else math.inf


@pytest.mark.parametrize("orientation", [1, 6])
def test_large_jpeg_shrinks_more_on_load_and_looks_the_same(
    tmp_path: Path, orientation: int
) -> None:
    # 10x the corpus photo's 600x450 (6000x4500): libjpeg shrinks by 2 here, thumbnail by 1.
    image = pyvips.Image.new_from_file(str(GOOD / "Landscape_1.jpg")).resize(10).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    path = tmp_path / "big.jpg"
    image.jpegsave(str(path), Q=90, keep="exif")
    with spool(path, 10**9) as spooled:
        header, _ = probe(spooled, sniff(spooled))
        plan = make_plan(header, EngineConfig())
        assert _own_jpeg_decode(plan, header)
        ours = decode(spooled, plan, header).image
    theirs = _libvips_decode(path, plan.decode_width, plan.decode_height)
    assert (ours.width, ours.height) == (theirs.width, theirs.height)
    assert ours.height > ours.width if orientation == 6 else ours.width > ours.height
    # Measured about 45 dB on photos (a q82 JPEG of them is nearer 38): nothing to see.
    assert _psnr(ours, theirs) > 38


def test_the_transform_is_built_once_per_profile() -> None:
    profile = pyvips.Image.new_from_file(str(GOOD / CMYK[0])).get("icc-profile-data")
    ink = bytes([0, 0, 0, 0, 255, 255, 255, 255])  # white paper, then full ink
    first = cms.cmyk_to_srgb(ink, 2, 1, profile)
    hits = cms._transform.cache_info().hits
    assert cms.cmyk_to_srgb(ink, 2, 1, profile) == first
    assert cms._transform.cache_info().hits == hits + 1
    assert min(first[:3]) > 200 and max(first[3:]) < 60  # paper is light, full ink dark


def test_an_unusable_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="CMYK profile"):
        cms.cmyk_to_srgb(bytes(4), 1, 1, b"not a profile")
