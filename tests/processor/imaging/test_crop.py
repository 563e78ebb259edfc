"""Cover renditions keep the subject: libvips' smartcrop (attention, entropy) or the centre."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from processor.core.config import Crop, EngineConfig, RenditionSpec
from processor.imaging.engine import Engine

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 900, 300
SUBJECT = (760, 120, 60, 60)  # left, top, width, height: small, far right of centre


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat, softly textured grey scene with a small red-and-white subject off centre."""
    background = pyvips.Image.gaussnoise(WIDTH, HEIGHT, sigma=3, mean=110).cast("uchar")
    scene = background.bandjoin([background, background]).copy(interpretation="srgb")
    left, top, w, h = SUBJECT
    check = pyvips.Image.xyz(w, h)
    checker = ((check[0] // 10 + check[1] // 10) % 2 == 0).ifthenelse([255, 255, 255], [220, 0, 0])
    scene = scene.insert(checker.cast("uchar").copy(interpretation="srgb"), left, top)
    path = tmp_path_factory.mktemp("crop") / "subject.png"
    scene.pngsave(str(path))
    return path


def square(photo: Path, crop: Crop) -> pyvips.Image:
    spec = RenditionSpec(
        name="sq", folder="sq", width=200, height=200, fit="cover", crop=crop, formats=("png",)
    )
    result = Engine(EngineConfig(renditions=(spec,))).process(photo, image_id="crop")
    (out,) = result.outputs
    assert (out.info.width, out.info.height) == (200, 200)
    return pyvips.Image.new_from_buffer(out.data, "")


def red_pixels(image: pyvips.Image) -> int:
    """Pixels of the subject's red: strongly red, little green (the grey has neither)."""
    red = (image[0] > 150) & (image[1] < 80)
    return int(red.avg() / 255 * image.width * image.height)


@pytest.mark.parametrize("crop", ["attention", "entropy"])
def test_smart_crops_keep_the_subject(photo: Path, crop: Crop) -> None:
    # Scaled to 600x200, the subject is 40x40 at x=506: all of its red half must survive.
    assert red_pixels(square(photo, crop)) >= 0.4 * 40 * 40


def test_centre_crop_cuts_it_off(photo: Path) -> None:
    assert red_pixels(square(photo, "centre")) == 0


def test_cover_renditions_default_to_attention() -> None:
    spec = RenditionSpec(name="sq", folder="sq", width=10, height=10, fit="cover")
    assert spec.crop == "attention"


def test_crop_changes_the_version_of_cover_renditions_only() -> None:
    inside = RenditionSpec(name="a", folder="a", width=10, height=10)
    cover = RenditionSpec(name="a", folder="a", width=10, height=10, fit="cover")

    def version(spec: RenditionSpec) -> str:
        return EngineConfig(renditions=(spec,)).version

    assert version(inside) == version(inside.model_copy(update={"crop": "centre"}))
    assert version(cover) != version(cover.model_copy(update={"crop": "centre"}))
