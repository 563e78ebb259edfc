"""The cost model's pure rules, in milliseconds (tests/processor/imaging/test_cost_measured.py
holds it against real decodes)."""

from __future__ import annotations

import pytest

from processor.core.config import EngineConfig, Limits, RenditionSpec, Scoring
from processor.core.errors import ImageTooCostly, TooManyFrames, TooManyPixels
from processor.entrypoints.settings import ProcessorSettings
from processor.rules.cost import (
    MB,
    encoder_bytes,
    estimate,
    human_bytes,
    jpeg_shrink,
    score_bytes,
)
from processor.rules.header import Header
from processor.rules.plan import make_plan

pytestmark = pytest.mark.unit

DEFAULT = EngineConfig()
OFF = Scoring(enabled=False)  # the estimates measured without the score step


def header(fmt: str, w: int, h: int, **kw: object) -> Header:
    return Header(format=fmt, width=w, height=h, input_bytes=200_000, **kw)  # type: ignore[arg-type]


def budget(mb: int, **kw: int) -> EngineConfig:
    return EngineConfig(limits=Limits(max_image_memory=mb * MB, **kw))


# --- pure rules --------------------------------------------------------------------------


def test_the_gif_bomb_is_refused_from_its_header_by_the_whole_decode_pixel_limit() -> None:
    # GIVEN a 196 KB, 17000x17000 GIF bomb (289 MP: inside the 300 MP limit)
    bomb = header("gif", 17000, 17000)
    # THEN it is over the limit for formats decoded whole, and the message says why
    with pytest.raises(TooManyPixels) as refused:
        make_plan(bomb, EngineConfig())
    assert refused.value.code == "too_many_pixels"
    assert "GIF is decoded whole" in refused.value.message
    assert "289.0 megapixels" in refused.value.message
    assert "the limit is 50.0 megapixels" in refused.value.message
    # ... while the same pixels as PNG are streamed, and accepted
    assert make_plan(header("png", 17000, 17000), budget(600)).cost.whole is False


def test_an_image_over_the_memory_budget_is_refused_naming_both_numbers() -> None:
    config = budget(600, max_pixels_whole=300_000_000)
    with pytest.raises(ImageTooCostly) as refused:
        make_plan(header("gif", 17000, 17000), config)
    assert refused.value.code == "too_costly"
    assert not refused.value.retryable
    message = refused.value.message
    assert message.startswith("GIF is decoded whole: 17000x17000 needs about 1.")
    assert message.endswith("GB; this function allows 600 MB per image")
    # the same budget takes the PNG, and a GIF a quarter of the size
    make_plan(header("png", 17000, 17000), config)
    make_plan(header("gif", 8500, 8500), config)


def test_the_estimate_covers_the_measured_peak_of_a_gif_bomb() -> None:
    # imgpipe process: 1.36 GB peak RSS for the GIF bomb, 177 MB for the same pixels as PNG,
    # each including about 50 MB of the process itself.
    gif = make_plan(
        header("gif", 17000, 17000), EngineConfig(limits=Limits(max_pixels_whole=10**9))
    )
    # (measured with the JPEG + WebP ladder; AVIF adds libaom's working memory)
    jpeg_webp = tuple(
        r.model_copy(update={"formats": ("jpeg", "webp")}) for r in DEFAULT.renditions
    )
    png = make_plan(header("png", 17000, 17000), EngineConfig(renditions=jpeg_webp, scoring=OFF))
    assert 1310 * MB <= gif.cost.memory_bytes <= 2000 * MB
    assert 127 * MB <= png.cost.memory_bytes <= 300 * MB


@pytest.mark.parametrize(
    ("fmt", "kw", "whole"),
    [
        ("jpeg", {}, False),
        ("jpeg", {"interlaced": True}, True),  # progressive: every coefficient held
        ("png", {}, False),
        ("png", {"interlaced": True}, True),  # Adam7
        ("tiff", {}, False),
        ("webp", {}, False),
        ("gif", {}, True),
        ("heic", {}, True),
        ("avif", {}, True),
    ],
)
def test_how_each_format_is_decoded(fmt: str, kw: dict[str, object], whole: bool) -> None:
    cost = estimate(header(fmt, 8000, 6000, **kw), 2048, 1536)
    assert cost.whole is whole
    assert ("whole" in cost.how) is whole


def test_streamed_costs_grow_with_width_and_depth_whole_costs_with_pixels() -> None:
    png = estimate(header("png", 16000, 4000), 2048, 512).memory_bytes
    assert estimate(header("png", 16000, 16000), 2048, 2048).memory_bytes < 2 * png
    assert estimate(header("png", 16000, 4000, sample_bytes=4), 2048, 512).memory_bytes > 2 * png
    gif = estimate(header("gif", 4000, 4000), 2048, 2048).memory_bytes
    assert estimate(header("gif", 16000, 16000), 2048, 2048).memory_bytes > 7 * gif
    # AVIF renditions add the encoder's working set
    plain = estimate(header("jpeg", 4000, 3000), 2048, 1536)
    avif = estimate(
        header("jpeg", 4000, 3000), 2048, 1536, encoders=encoder_bytes([("avif", 2048 * 1536)])
    )
    assert avif.memory_bytes > plain.memory_bytes + 50 * MB


def test_jpeg_shrinks_by_powers_of_two_up_to_eight() -> None:
    assert jpeg_shrink(8000, 6000, 2048, 1536) == 2
    assert jpeg_shrink(16000, 12000, 2048, 1536) == 4
    assert jpeg_shrink(60000, 45000, 2048, 1536) == 8
    assert jpeg_shrink(1000, 800, 1000, 800) == 1


def test_avif_renditions_enter_the_plan_cost() -> None:
    avif = EngineConfig(
        renditions=(RenditionSpec(name="big", folder="big", width=2048, height=2048,
                                  formats=("jpeg", "avif")),),
        scoring=OFF,
    )  # fmt: skip
    plain = make_plan(
        header("jpeg", 4000, 4000),
        EngineConfig(renditions=(RenditionSpec(name="big", folder="big", width=2048, height=2048,
                                               formats=("jpeg",)),), scoring=OFF),
    )  # fmt: skip
    assert make_plan(header("jpeg", 4000, 4000), avif).cost.memory_bytes > plain.cost.memory_bytes


def test_the_score_step_enters_the_plan_cost_when_it_is_on() -> None:
    # GIVEN a 12 MP photo and the default ladder, scored (the default) and not
    photo = header("jpeg", 4000, 3000)
    scored = EngineConfig(scoring=Scoring(enabled=True))
    assert (
        make_plan(photo, scored).scored and not make_plan(photo, EngineConfig(scoring=OFF)).scored
    )
    off, on = make_plan(photo, EngineConfig(scoring=OFF)).cost, make_plan(photo, scored).cost
    # THEN the score's working set (after the encodes: the larger of the two) is counted
    largest = 2048 * 1536
    assert on.memory_bytes - off.memory_bytes == score_bytes(largest) - encoder_bytes(
        [("avif", largest), ("webp", largest), ("jpeg", largest)]
    )
    # at least what a 2048x1672 rendition's score step peaked at above its inputs (131 MB whole)
    assert score_bytes(2048 * 1672) > 131 * MB
    # ... and a crop cap caps it
    capped = EngineConfig(scoring=Scoring(enabled=True, max_pixels=512 * 512))
    assert make_plan(photo, capped).cost.memory_bytes < on.memory_bytes


def test_a_score_that_would_not_fit_is_left_out_and_the_image_made() -> None:
    # GIVEN a budget that the renditions fit and the renditions with their scores do not
    photo = header("jpeg", 4000, 3000)
    without = make_plan(photo, EngineConfig(scoring=OFF)).cost.memory_bytes
    on = Scoring(enabled=True)
    with_scores = make_plan(photo, EngineConfig(scoring=on)).cost.memory_bytes
    assert with_scores > without
    tight = EngineConfig(limits=Limits(max_image_memory=without), scoring=on)
    # THEN the image is planned, unscored, at the cost of its renditions
    planned = make_plan(photo, tight)
    assert not planned.scored and planned.cost.memory_bytes == without
    # ... while a budget with room for the scores scores it
    roomy = EngineConfig(limits=Limits(max_image_memory=with_scores), scoring=on)
    assert make_plan(photo, roomy).scored


def test_too_many_frames_is_refused() -> None:
    with pytest.raises(TooManyFrames, match="1,001 frames; the limit is 1,000"):
        make_plan(header("gif", 100, 100, frames=1001), EngineConfig())
    make_plan(header("gif", 100, 100, frames=1000), EngineConfig())


def test_human_bytes_speaks_lambdas_units() -> None:
    assert human_bytes(600 * MB) == "600 MB"
    assert human_bytes(1536 * MB) == "1.5 GB"


def test_settings_share_the_function_memory_less_the_reserve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMGPIPE_BUCKET", "bucket")
    monkeypatch.setenv("IMGPIPE_TABLE", "table")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    monkeypatch.setenv("IMGPIPE_MEMORY_RESERVE_MB", "256")
    monkeypatch.setenv("IMGPIPE_IMAGES_AT_ONCE", "2")
    limits = ProcessorSettings().engine_config.limits
    assert limits.max_image_memory == 1376 * MB  # two images in flight share 2,752 MB
    assert limits.max_seconds == 30.0
    # One vCPU (1,769 MB or less): the handler runs one image at a time, so it gets it all.
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    assert ProcessorSettings().images_in_flight == 1
    assert ProcessorSettings().engine_config.limits.max_image_memory == 768 * MB
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    assert ProcessorSettings().engine_config.limits.max_image_memory is None  # not on Lambda
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
    with pytest.raises(ValueError, match="IMGPIPE_MEMORY_RESERVE_MB"):
        ProcessorSettings()


# --- measured ----------------------------------------------------------------------------


# --- the time budget ----------------------------------------------------------------------


def test_a_50_megapixel_avif_is_costed_as_decoded_whole() -> None:
    """libheif decodes an AVIF whole: about 16 bytes a pixel per sample byte, measured on
    detailed 8- and 10-bit AVIFs (``python -m benchmarks.avif_memory``: 16.0 to 22.6)."""
    eight = make_plan(header("avif", 8660, 5773), EngineConfig(scoring=OFF)).cost
    assert eight.whole
    # 16 B/px x 50 MP, plus the outputs (the default ladder's AVIF adds libaom's ~100 MB)
    assert 780 * MB < eight.memory_bytes < 1000 * MB
    ten = make_plan(header("avif", 8660, 5773, sample_bytes=2), EngineConfig(scoring=OFF)).cost
    assert ten.memory_bytes > eight.memory_bytes + 700 * MB
    # A 1,024 MB function gives one image 768 MB: the 50 MP AVIF is too costly there, by name.
    with pytest.raises(ImageTooCostly, match=r"8660x5773 needs about 9\d\d MB; this function"):
        make_plan(header("avif", 8660, 5773), budget(768))
