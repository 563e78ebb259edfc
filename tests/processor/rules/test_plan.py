"""The pure plan: limits, sizes and formats, with no libvips involved."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.core.config import EngineConfig, Limits, RenditionSpec
from processor.core.errors import ImageTooLarge, TooManyPixels
from processor.rules.header import Header
from processor.rules.plan import fit_size, make_plan, resolve_formats

pytestmark = pytest.mark.unit


def header(w: int, h: int, **kw: object) -> Header:
    return Header(format="jpeg", width=w, height=h, input_bytes=1000, **kw)  # type: ignore[arg-type]


def test_pixel_limit_refuses_from_header() -> None:
    with pytest.raises(TooManyPixels) as e:
        make_plan(header(65536, 65536), EngineConfig())
    assert e.value.code == "too_many_pixels"
    assert "4,295.0 megapixels" in e.value.message


def test_giant_but_legitimate_passes() -> None:
    plan = make_plan(header(20000, 14000), EngineConfig())
    assert (plan.decode_width, plan.decode_height) == (2048, 1434)


def test_byte_and_side_limits() -> None:
    config = EngineConfig(limits=Limits(max_input_bytes=999, max_dimension=500))
    with pytest.raises(ImageTooLarge, match="1,000 bytes"):
        make_plan(header(10, 10), config)
    config = EngineConfig(limits=Limits(max_dimension=500))
    with pytest.raises(ImageTooLarge, match="no side may exceed 500"):
        make_plan(header(501, 10), config)


def test_orientation_swaps_sides() -> None:
    plan = make_plan(header(450, 600, orientation=6), EngineConfig())
    sizes = {r.name: (r.width, r.height) for r in plan.renditions}
    assert sizes == {"thumb": (320, 240), "optimized": (600, 450)}


def test_alpha_turns_jpeg_into_png_and_dedupes() -> None:
    spec = RenditionSpec(name="t", folder="t", width=10, height=10, formats=("jpeg", "png", "webp"))
    assert [e.format for e in resolve_formats(spec, has_alpha=True)] == ["png", "webp"]
    assert [e.format for e in resolve_formats(spec, has_alpha=False)] == ["jpeg", "png", "webp"]


def test_cover_fills_the_box() -> None:
    spec = RenditionSpec(name="sq", folder="sq", width=200, height=200, fit="cover")
    plan = make_plan(header(1000, 500), EngineConfig(renditions=(spec,)))
    assert (plan.renditions[0].width, plan.renditions[0].height) == (200, 200)
    assert plan.renditions[0].crop
    # decode big enough to cover: the short side reaches 200
    assert (plan.decode_width, plan.decode_height) == (400, 200)


def test_colour_management_only_when_tagged_or_cmyk() -> None:
    assert not make_plan(header(10, 10), EngineConfig()).colour_manage
    assert make_plan(header(10, 10, has_icc=True), EngineConfig()).colour_manage
    assert make_plan(header(10, 10, interpretation="cmyk"), EngineConfig()).colour_manage


def test_config_version_tracks_renditions_not_limits() -> None:
    base = EngineConfig()
    assert EngineConfig(limits=Limits(max_pixels=5)).version == base.version
    spec = RenditionSpec(name="thumb", folder="thumbs", width=300, height=300)
    assert EngineConfig(renditions=(spec,)).version != base.version


def test_config_rejects_repeated_names() -> None:
    spec = RenditionSpec(name="a", folder="a", width=1, height=1)
    with pytest.raises(ValueError, match="repeat"):
        EngineConfig(renditions=(spec, spec))


sides = st.integers(min_value=1, max_value=17000)
boxes = st.integers(min_value=1, max_value=4096)


@given(w=sides, h=sides, bw=boxes, bh=boxes, cover=st.booleans())
def test_fit_never_zero_never_upscaled_aspect_kept(
    w: int, h: int, bw: int, bh: int, cover: bool
) -> None:
    ow, oh = fit_size(w, h, bw, bh, cover)
    assert 1 <= ow <= min(w, bw)
    assert 1 <= oh <= min(h, bh)
    if not cover and (ow, oh) != (w, h):
        # the scaled image keeps the source's aspect ratio to within a pixel on each side
        scale = min(bw / w, bh / h)
        assert abs(ow - w * scale) <= 1 or ow == 1
        assert abs(oh - h * scale) <= 1 or oh == 1


@given(w=sides, h=sides, bw=boxes, bh=boxes)
def test_decode_size_serves_every_rendition(w: int, h: int, bw: int, bh: int) -> None:
    specs = (
        RenditionSpec(name="a", folder="a", width=bw, height=bh),
        RenditionSpec(name="b", folder="b", width=max(1, bw // 3), height=bh, fit="cover"),
    )
    plan = make_plan(header(w, h), EngineConfig(renditions=specs))
    assert plan.decode_width <= w and plan.decode_height <= h
    for r in plan.renditions:
        assert r.width <= plan.decode_width + 1 and r.height <= plan.decode_height + 1


def test_srgb_tagged_images_skip_colour_management() -> None:
    tagged = header(10, 10, has_icc=True, icc_description="sRGB IEC61966-2.1")
    assert tagged.icc_is_srgb
    assert not make_plan(tagged, EngineConfig()).colour_manage
    p3 = header(10, 10, has_icc=True, icc_description="Display P3")
    assert make_plan(p3, EngineConfig()).colour_manage


def test_encoder_effort_comes_from_the_config() -> None:
    from processor.core.config import Quality

    spec = RenditionSpec(
        name="t",
        folder="t",
        width=9,
        height=9,
        formats=("webp", "avif", "jpeg"),
        quality=Quality(webp_effort=2, avif_effort=5, jpeg_effort=1),
    )
    assert [(e.format, e.effort) for e in resolve_formats(spec, has_alpha=False)] == [
        ("webp", 2),
        ("avif", 5),
        ("jpeg", 1),
    ]
