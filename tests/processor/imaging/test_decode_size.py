"""The decode lands exactly on the planned size, and the largest rendition is never resized
again: over many random source sizes and boxes, in every decoder path that a still takes
(libvips' thumbnail of a file, the JPEG shrink-on-load path, EXIF-rotated JPEGs, the HEIC
path's thumbnail of pixels in memory).

The sizes are small (tens to hundreds of pixels) so hundreds of decodes take seconds; the
rounding that lands a resize one pixel short does not depend on the scale of the image."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import pyvips

from processor.core.config import EngineConfig, RenditionSpec
from processor.imaging.decode import decode
from processor.imaging.derive import derive
from processor.imaging.pixels import Held
from processor.imaging.plan import plan
from processor.imaging.probe import probe
from processor.imaging.sniff import sniff
from processor.imaging.spool import spool
from tests.processor.imaging import heic_samples as hs

pytestmark = pytest.mark.integration

SEED = 20261207


def _source(path: Path, width: int, height: int, orientation: int = 1) -> Path:
    """A small image with detail (a resize of it changes pixels, a copy does not)."""
    image = pyvips.Image.xyz(width, height)
    image = ((image[0] * 7 + image[1] * 13) % 256).cast("uchar")
    image = image.bandjoin([image.flip("horizontal"), image.flip("vertical")])
    image = image.copy(interpretation="srgb")
    if orientation != 1:
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    image.write_to_file(str(path))
    return path


def _config(rng: random.Random, width: int, height: int) -> EngineConfig:
    """Two renditions: one box smaller than the source, one thumbnail."""
    box_w = rng.randint(max(1, width // 4), max(1, width - 1))
    box_h = rng.randint(max(1, height // 4), max(1, height - 1))
    fit = rng.choice(["inside", "inside", "cover"])
    return EngineConfig(
        renditions=(
            RenditionSpec(name="thumb", folder="t", width=16, height=16, formats=("png",)),
            RenditionSpec(
                name="large", folder="l", width=box_w, height=box_h, fit=fit, formats=("png",)
            ),
        )
    )


def _check(path: Path, config: EngineConfig) -> tuple[int, int]:
    with spool(path, 10**9) as spooled:
        header, _ = probe(spooled, sniff(spooled))
        planned = plan(header, config)
        decoded = decode(spooled, planned, header)
    assert isinstance(decoded, Held)
    want = (planned.decode_width, planned.decode_height)
    assert decoded.size == want, (path.name, header.width, header.height, want)
    for r in planned.renditions:
        if (r.width, r.height) == want:
            # The rendition the decode was sized for: the decoded pixels themselves.
            assert derive(decoded, r) is decoded
    return want


def test_the_decode_lands_on_the_planned_size(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    checked = 0
    for i in range(240):
        width, height = rng.randint(24, 400), rng.randint(24, 400)
        kind = i % 3
        if kind == 0:
            path = _source(tmp_path / f"{i}.png", width, height)
        elif kind == 1:
            path = _source(tmp_path / f"{i}.jpg", width, height)
        else:
            path = _source(tmp_path / f"{i}.jpg", width, height, orientation=rng.choice([6, 8]))
        _check(path, _config(rng, width, height))
        path.unlink()
        checked += 1
    assert checked == 240


def test_the_large_photo_that_landed_one_pixel_short(tmp_path: Path) -> None:
    """1622x2880 into a 2048 box: libvips' own aspect-keeping size is 1153x2047."""
    config = EngineConfig(
        renditions=(RenditionSpec(name="o", folder="o", width=2048, height=2048),)
    )
    for suffix in ("png", "jpg"):
        path = _source(tmp_path / f"tall.{suffix}", 1622, 2880)
        assert _check(path, config) == (1153, 2048)


def test_heic_decodes_land_on_the_planned_size(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    for i in range(5):
        width, height = rng.randint(40, 160), rng.randint(40, 160)
        path = hs.save(hs.pattern(width, height), tmp_path / f"{i}.heic")
        _check(path, _config(rng, width, height))
