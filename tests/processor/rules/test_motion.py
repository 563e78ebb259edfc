"""What happens to an animated upload's frames, decided from the header alone (no libvips)."""

from __future__ import annotations

import pytest

from processor.core.config import EngineConfig, Limits, RenditionSpec
from processor.core.errors import TooManyFrames, TooManyPixels
from processor.rules.cost import MB
from processor.rules.header import Header
from processor.rules.motion import played
from processor.rules.plan import make_plan

pytestmark = pytest.mark.unit


def animation(
    w: int = 480, h: int = 270, frames: int = 60, delay: int = 40, **kw: object
) -> Header:
    return Header(  # type: ignore[arg-type]
        format="gif",
        width=w,
        height=h,
        input_bytes=2_000_000,
        has_alpha=True,
        bands=4,
        frames=frames,
        animation=True,
        delays_ms=(delay,) * frames,
        loop=0,
        **kw,
    )


def test_an_animation_keeps_its_frames_in_webp_and_a_poster_in_the_still_formats() -> None:
    plan = make_plan(animation(), EngineConfig())
    assert plan.animated and plan.motion is not None and plan.motion.kept
    for r in plan.renditions:
        assert {(e.format, e.animated) for e in r.encodes} == {
            ("avif", False),
            ("png", False),
            ("webp", True),
        }
    assert plan.motion.duration_ms == 60 * 40 and plan.motion.loop == 0
    assert "holds every frame" in plan.cost.how


def test_an_avif_rendition_of_an_animation_is_a_still_poster() -> None:
    spec = RenditionSpec(name="a", folder="a", width=320, height=320, formats=("avif", "webp"))
    (r,) = make_plan(animation(), EngineConfig(renditions=(spec,))).renditions
    assert [(e.format, e.animated) for e in r.encodes] == [("avif", False), ("webp", True)]


def test_browsers_play_a_delay_of_10_ms_or_less_as_100_ms() -> None:
    assert [played(d) for d in (0, 10, 11, 70)] == [100, 100, 11, 70]
    plan = make_plan(animation(frames=3, delay=0), EngineConfig())
    assert plan.motion is not None and plan.motion.delays_ms == (100, 100, 100)


@pytest.mark.parametrize(
    ("header", "limits", "code", "says"),
    [
        (animation(frames=800), Limits(max_animation_pixels=100_000_000), "too_many_pixels",
         "800 frames of 480x270 are 103.7 megapixels; animations are kept up to 100.0"),
        (animation(frames=100, delay=2000), Limits(max_animation_ms=120_000), "too_long",
         "one loop plays 200.0 s; animations are kept up to 120.0 s"),
        (animation(1000, 1000, frames=90), Limits(max_image_memory=300 * MB), "too_costly",
         "its 90 frames need about "),
    ],
)  # fmt: skip
def test_over_a_motion_limit_the_plan_keeps_a_still_and_says_why(
    header: Header, limits: Limits, code: str, says: str
) -> None:
    plan = make_plan(header, EngineConfig(limits=limits))
    assert plan.motion is not None and not plan.motion.kept and not plan.animated
    assert plan.motion.still is not None and plan.motion.still.code == code
    assert says in plan.motion.still.message
    assert not any(e.animated for r in plan.renditions for e in r.encodes)
    # the still's own cost, not the animation's
    assert "holds every frame" not in plan.cost.how


def test_the_memory_limit_follows_the_functions_share_per_image() -> None:
    header = animation(800, 600, frames=150)
    kept = make_plan(header, EngineConfig())  # no budget (the CLI): kept
    assert kept.animated
    # the estimate grows with the frames, and is above the still's
    fewer = make_plan(animation(800, 600, frames=50), EngineConfig())
    assert kept.cost.memory_bytes > fewer.cost.memory_bytes + 100 * 800 * 600 * 4
    small = EngineConfig(limits=Limits(max_image_memory=kept.cost.memory_bytes - 1))
    big = EngineConfig(limits=Limits(max_image_memory=kept.cost.memory_bytes))
    assert not make_plan(header, small).animated
    assert make_plan(header, big).animated


def test_turned_off_in_the_config_or_without_a_format_that_carries_animation() -> None:
    off = RenditionSpec(name="a", folder="a", width=320, height=320, animated=False)
    jpeg_only = RenditionSpec(name="b", folder="b", width=320, height=320, formats=("jpeg",))
    for spec in (off, jpeg_only):
        plan = make_plan(animation(), EngineConfig(renditions=(spec,)))
        assert plan.motion is not None and plan.motion.still is not None
        assert plan.motion.still.code == "turned_off"


def test_one_rendition_off_the_other_animated() -> None:
    off = RenditionSpec(name="a", folder="a", width=64, height=64, animated=False)
    on = RenditionSpec(name="b", folder="b", width=320, height=320)
    plan = make_plan(animation(), EngineConfig(renditions=(off, on)))
    assert plan.animated
    animated = {r.name: any(e.animated for e in r.encodes) for r in plan.renditions}
    assert animated == {"a": False, "b": True}


def test_the_poster_frame_is_the_configured_one_or_the_last() -> None:
    for configured, expected in ((0, 0), (5, 5), (500, 59)):
        plan = make_plan(animation(), EngineConfig(poster_frame=configured))
        assert plan.motion is not None and plan.motion.poster == expected


def test_a_still_has_no_motion_and_a_multipage_tiff_is_no_animation() -> None:
    still = Header(format="png", width=100, height=100, input_bytes=1000)
    assert make_plan(still, EngineConfig()).motion is None
    tiff = Header(format="tiff", width=100, height=100, input_bytes=1000, frames=5)
    assert make_plan(tiff, EngineConfig()).motion is None


def test_todays_guarantees_hold_for_animations() -> None:
    # the 196 KB 17000x17000 GIF bomb: refused from its header, animated or not
    with pytest.raises(TooManyPixels):
        make_plan(animation(17000, 17000, frames=2), EngineConfig())
    # the 5,000-frame GIF: refused (every frame is parsed to read the header)
    with pytest.raises(TooManyFrames, match="5,000 frames; the limit is 1,000"):
        make_plan(animation(100, 100, frames=5000), EngineConfig())


def test_the_motion_settings_are_part_of_the_config_version() -> None:
    base = EngineConfig()
    off = EngineConfig(
        renditions=tuple(s.model_copy(update={"animated": False}) for s in base.renditions)
    )
    assert len({base.version, off.version, EngineConfig(poster_frame=1).version}) == 3
    # limits only choose between the animation and its still, and the record says which
    assert EngineConfig(limits=Limits(max_animation_ms=1000)).version == base.version
