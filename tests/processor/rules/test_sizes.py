"""Which stored file a size made on demand starts from: pure."""

from __future__ import annotations

import pytest

from processor.core.record import ImageFacts, RenditionInfo
from processor.core.sizes import Size
from processor.rules.sizes import best_source, scaled_size

pytestmark = pytest.mark.unit

FACTS = ImageFacts(sha256="0" * 64, input_bytes=1, format="jpeg", width=4000, height=3000)


def rendition(w: int, h: int, fmt: str = "jpeg", **kw: object) -> RenditionInfo:
    return RenditionInfo(
        name="r",
        key=f"r/{w}x{h}.{fmt}",
        format=fmt,
        content_type="x",
        width=w,
        height=h,
        bytes=w * h,
        **kw,  # type: ignore[arg-type]
    )


def size(w: int, h: int | None = None, fit: str = "contain") -> Size:
    return Size("i" * 26, "v" * 10, w, h, fit, "webp")  # type: ignore[arg-type]


THUMB, OPTIMIZED = rendition(320, 240), rendition(2048, 1536)


def test_the_smallest_rendition_at_least_as_large() -> None:
    assert best_source(FACTS, [OPTIMIZED, THUMB], size(160)) == THUMB
    assert best_source(FACTS, [OPTIMIZED, THUMB], size(640)) == OPTIMIZED
    assert best_source(FACTS, [OPTIMIZED, THUMB], size(320)) == THUMB


def test_larger_than_any_rendition_is_made_from_the_original() -> None:
    assert best_source(FACTS, [OPTIMIZED, THUMB], size(2560)) is None


def test_a_cover_box_needs_the_scaled_image_before_its_cut() -> None:
    # a 320 x 320 cover of 4:3 scales to 427 x 320 first: the 320 px thumb is too small
    assert scaled_size(FACTS, size(320, 320, "cover")) == (427, 320)
    assert best_source(FACTS, [OPTIMIZED, THUMB], size(320, 320, "cover")) == OPTIMIZED


def test_a_cut_rendition_an_animation_or_avif_is_no_source() -> None:
    square = rendition(1000, 1000)
    assert best_source(FACTS, [square], size(160)) is None
    assert best_source(FACTS, [rendition(2048, 1536, "avif")], size(160)) is None
    moving = rendition(2048, 1536, "webp", animated=True)
    assert best_source(FACTS, [moving], size(160)) is None
    animated = FACTS.model_copy(update={"animated": True})
    assert best_source(animated, [OPTIMIZED], size(160)) is None


def test_png_wins_a_tie() -> None:
    png = rendition(2048, 1536, "png")
    assert best_source(FACTS, [OPTIMIZED, png], size(640)) == png


def test_never_upscaled_so_a_small_image_needs_its_full_size() -> None:
    small = ImageFacts(sha256="0" * 64, input_bytes=1, format="jpeg", width=300, height=200)
    assert scaled_size(small, size(2048)) == (300, 200)
    assert best_source(small, [rendition(300, 200)], size(2048)) == rendition(300, 200)
