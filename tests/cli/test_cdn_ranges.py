"""The CloudFront stand-in's header rules on plain values: weak ETags, single byte ranges."""

from __future__ import annotations

import pytest

from cli.local.cdn import etag_matches, single_range

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
    ],
)
def test_single_range(header: str | None, expected: str | None) -> None:
    assert single_range(header) == expected


def test_etag_matches_weakly() -> None:
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc", "x"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abd"', '"abc"')
