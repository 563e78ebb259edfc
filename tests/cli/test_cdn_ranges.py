"""The CloudFront stand-in's header rules on plain values: weak ETags, single byte ranges."""

from __future__ import annotations

import pytest

from cli.local.cdn import RangeBeyondFile, etag_matches, single_range

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", "bytes=0-99"),
        ("bytes=100-", "bytes=100-"),
        ("bytes=-50", "bytes=-50"),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file instead
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=9-3", None),
        # Past any file's end (Python reads no number of over 4,300 digits): to the end.
        (f"bytes=5-{'9' * 5000}", "bytes=5-"),
        (f"bytes=-{'9' * 5000}", "bytes=0-"),
    ],
)
def test_single_range(header: str | None, expected: str | None) -> None:
    assert single_range(header) == expected


@pytest.mark.parametrize("digits", [19, 4300, 5000])
def test_a_first_position_past_any_file_is_unsatisfiable(digits: int) -> None:
    with pytest.raises(RangeBeyondFile):
        single_range(f"bytes={'9' * digits}-")


def test_etag_matches_weakly() -> None:
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc", "x"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abd"', '"abc"')
