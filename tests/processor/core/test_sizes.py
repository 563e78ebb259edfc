"""The URL grammar of sizes made on demand and its allowed set: pure, no AWS, no libvips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from processor.core.errors import NoSuchRendition, SizeNotAllowed
from processor.core.sizes import (
    FOLDER,
    OnDemandConfig,
    Size,
    on_demand_formats,
    parse,
    widths_for,
)

pytestmark = pytest.mark.unit

CONFIG = OnDemandConfig()
IID = "kz2y6v3k4qj7m2xq5w3ggz6d4e"
VER = "1a2b3c4d5e"


def test_a_width_alone() -> None:
    size = parse(f"/sizes/{IID}-{VER}-640w.webp", CONFIG)
    assert size == Size(IID, VER, 640, None, "contain", "webp")
    assert size.key == f"sizes/{IID}-{VER}-640w.webp"
    assert size.name == "w640"
    spec = size.spec(CONFIG)
    assert (spec.width, spec.fit, spec.formats, spec.folder) == (640, "inside", ("webp",), FOLDER)


def test_a_box_with_a_fit() -> None:
    size = parse(f"sizes/{IID}-{VER}-320x160-cover.jpg", CONFIG)
    assert (size.width, size.height, size.fit, size.format) == (320, 160, "cover", "jpeg")
    assert size.key == f"sizes/{IID}-{VER}-320x160-cover.jpg"
    spec = size.spec(CONFIG)
    assert (spec.width, spec.height, spec.fit, spec.crop) == (320, 160, "cover", "attention")


@pytest.mark.parametrize(
    "shape",
    [
        "641w.jpg",
        "0640w.jpg",
        "64000w.jpg",
        "640x360-cover.jpg",  # 360 is no step
        "640x320-fill.jpg",
        "640w.gif",
        "640w.jpeg",  # one extension per format: the table's first
        "640w.svg",
    ],
)
def test_outside_the_set_is_refused(shape: str) -> None:
    with pytest.raises(SizeNotAllowed):
        parse(f"/sizes/{IID}-{VER}-{shape}", CONFIG)


@pytest.mark.parametrize(
    "path",
    [
        "/thumbs/x.jpg",
        f"/sizes/{IID}-{VER}.jpg",
        f"/sizes/{IID.upper()}-{VER}-640w.jpg",
        f"/sizes/{IID}-{VER}-640w.jpg/../../x",
        f"/sizes/{IID}-{VER}-640w",
        "/sizes/" + "a" * 5000,
    ],
)
def test_what_is_no_size_path_is_not_found(path: str) -> None:
    with pytest.raises(NoSuchRendition) as e:
        parse(path, CONFIG)
    assert len(e.value.message) < 200


@given(st.text(max_size=80))
def test_any_path_parses_or_is_refused_with_a_code(path: str) -> None:
    try:
        size = parse(path, CONFIG)
    except (SizeNotAllowed, NoSuchRendition):
        return
    assert size.key == path.lstrip("/")  # one spelling: what parses is its own key


def test_a_smaller_set_is_the_config() -> None:
    config = OnDemandConfig(widths=(300, 100), formats=("webp",), fits=("cover",))
    assert config.widths == (100, 300)
    assert parse(f"sizes/{IID}-{VER}-100x300-cover.webp", config).height == 300
    for shape in ("640w.webp", "100w.jpg", "100x100-contain.webp"):
        with pytest.raises(SizeNotAllowed):
            parse(f"sizes/{IID}-{VER}-{shape}", config)


def test_config_refuses_what_the_engine_cannot_make() -> None:
    with pytest.raises(ValidationError):
        OnDemandConfig(formats=("gif",))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        OnDemandConfig(widths=(0,))
    with pytest.raises(ValidationError):
        OnDemandConfig(fits=("stretch",))  # type: ignore[arg-type]


def test_widths_worth_asking_for_stop_at_the_image() -> None:
    assert widths_for(700, CONFIG) == [160, 320, 480, 640, 768]
    assert widths_for(640, CONFIG) == [160, 320, 480, 640]
    assert widths_for(5000, CONFIG) == list(CONFIG.widths)


def test_jpeg_is_not_offered_for_an_image_with_alpha() -> None:
    assert on_demand_formats(True, CONFIG) == ["png", "webp", "avif"]
    assert on_demand_formats(False, CONFIG) == ["jpeg", "png", "webp", "avif"]
