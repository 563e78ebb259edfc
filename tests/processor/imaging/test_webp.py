"""The engine's WebP encoder writes exactly what libvips' webpsave writes at the same settings.

processor/imaging/webp.py sends WebP to Pillow's libwebp because it is faster for the same bytes; if
the bytes ever differed (another libwebp, other defaults), renditions would silently change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")

from processor.imaging import webp  # noqa: E402  (after the importorskip above)
from processor.imaging.encode import encode  # noqa: E402
from processor.imaging.pixels import hold  # noqa: E402
from processor.imaging.vips import init_vips  # noqa: E402
from processor.rules.plan import Encode  # noqa: E402
from tests.conftest import good_files  # noqa: E402

pytestmark = pytest.mark.integration


def _pixels(path: Path, size: int) -> pyvips.Image:
    """8-bit sRGB pixels as the engine hands them to its encoders (RGB, or RGBA with alpha)."""
    image = pyvips.Image.thumbnail(str(path), size)
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    return image.cast("uchar").copy_memory()


@pytest.fixture(scope="module", autouse=True)
def _vips() -> None:
    init_vips()


def test_pillow_webp_is_there() -> None:
    # The processor image and the local engine ship Pillow for this; without it every WebP
    # would quietly fall back to the slower encoder.
    assert webp.available(3) and webp.available(4)
    assert not webp.available(2)


@pytest.mark.parametrize("path", good_files(), ids=lambda p: p.name)
def test_same_bytes_as_libvips(path: Path) -> None:
    image = _pixels(path, 512)
    if image.bands not in (3, 4):
        pytest.skip(f"{image.bands} bands: the engine makes these sRGB first")
    enc = Encode(format="webp", quality=80, effort=4)
    ours = encode(hold(image), enc).data
    theirs = image.webpsave_buffer(Q=80, effort=4, keep="none")
    assert ours[:4] == b"RIFF" and ours[8:12] == b"WEBP"
    assert ours == theirs


@pytest.mark.parametrize(("quality", "effort"), [(60, 2), (90, 6)])
def test_same_bytes_at_other_settings(corpus: Path, quality: int, effort: int) -> None:
    image = _pixels(corpus / "good" / "with-alpha.png", 256)
    enc = Encode(format="webp", quality=quality, effort=effort)
    assert encode(hold(image), enc).data == image.webpsave_buffer(
        Q=quality, effort=effort, keep="none"
    )


def test_images_pillow_cannot_take_go_to_libvips(corpus: Path) -> None:
    # Two bands (grey + alpha) or 16-bit pixels: libvips encodes them itself.
    grey_alpha = pyvips.Image.thumbnail(
        str(corpus / "good" / "grey-8bit-alpha.png"), 64
    ).copy_memory()
    assert grey_alpha.bands == 2
    enc = Encode(format="webp", quality=80, effort=4)
    assert encode(hold(grey_alpha), enc).data == grey_alpha.webpsave_buffer(
        Q=80, effort=4, keep="none"
    )
