"""A rendition's score on the record, and the listing filter on an image's worst one."""

from __future__ import annotations

import pytest

from processor.core.record import ImageRecord, RenditionInfo, ScoreRange, Status, worst_score
from processor.core.view import image_public

pytestmark = pytest.mark.unit


def rendition(fmt: str, score: float | None, *, animated: bool = False) -> RenditionInfo:
    return RenditionInfo(
        name="optimized",
        key=f"optimized/x.{fmt}",
        format=fmt,
        content_type=f"image/{fmt}",
        width=2048,
        height=1536,
        bytes=400_000,
        animated=animated,
        score=score,
    )


def done(renditions: list[RenditionInfo]) -> ImageRecord:
    return ImageRecord(
        id="kz2y6v3k4qj7m2xq5w3ggz6d4e",
        source_key="raw/a/b.jpg",
        status=Status.done,
        created_at="2024-05-01T12:00:00Z",
        updated_at="2024-05-01T12:00:02Z",
        renditions=renditions,
    )


def test_the_worst_score_ignores_renditions_not_scored() -> None:
    assert worst_score([rendition("jpeg", 81.5), rendition("webp", 74.25)]) == 74.25
    assert worst_score([rendition("webp", None, animated=True), rendition("png", 100.0)]) == 100
    assert worst_score([rendition("webp", None)]) is None
    assert worst_score([]) is None


@pytest.mark.parametrize(
    ("range_", "scores", "admitted"),
    [
        (ScoreRange(max_score=75), [81.5, 74.25], True),  # one rendition at or below
        (ScoreRange(max_score=74.25), [81.5, 74.25], True),  # the bound is inclusive
        (ScoreRange(max_score=70), [81.5, 74.25], False),
        (ScoreRange(min_score=74.25), [81.5, 74.25], True),
        (ScoreRange(min_score=75), [81.5, 74.25], False),  # every rendition must reach it
        (ScoreRange(min_score=70, max_score=80), [81.5, 74.25], True),
        (ScoreRange(min_score=75, max_score=80), [81.5, 74.25], False),
        (ScoreRange(max_score=100), [None], False),  # not scored: passes no score filter
        (ScoreRange(min_score=0), [None, None], False),
    ],
)
def test_a_score_range_admits_by_the_worst_rendition(
    range_: ScoreRange, scores: list[float | None], admitted: bool
) -> None:
    assert range_.admits([rendition("jpeg", s) for s in scores]) is admitted


def test_the_score_survives_the_stored_item_and_reaches_the_public_image() -> None:
    # GIVEN a done record with a scored still, a perfect PNG and an animated file not scored
    record = done(
        [
            rendition("jpeg", 78.43),
            rendition("png", 100.0),
            rendition("webp", None, animated=True),
        ]
    )
    # WHEN it goes to DynamoDB's types and back (floats as Decimal, None left out)
    back = ImageRecord.from_item(record.to_item())
    # THEN each score is the same, and the public view shows it
    assert [r.score for r in back.renditions] == [78.43, 100.0, None]
    assert "score" not in record.to_item()["renditions"][2]
    public = image_public(back, "https://cdn.example")
    assert [r.score for r in public.renditions] == [78.43, 100.0, None]


def test_a_searched_quality_survives_the_stored_item_and_reaches_the_public_image() -> None:
    searched = rendition("jpeg", 79.1).model_copy(update={"quality": 71})
    record = done([searched, rendition("webp", None)])
    back = ImageRecord.from_item(record.to_item())
    assert [r.quality for r in back.renditions] == [71, None]
    assert "quality" not in record.to_item()["renditions"][1]
    assert [r.quality for r in image_public(back, "https://cdn.example").renditions] == [71, None]
