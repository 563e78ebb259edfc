"""libvips' messages cut down to their own image: no server path, no repeats, never cut
inside a word."""

from __future__ import annotations

import pytest

from processor.core.diagnostics import clip, vips_detail

pytestmark = pytest.mark.unit


def test_detail_keeps_own_lines_without_the_path_or_repeats() -> None:
    own = "/tmp/imgpipe-abc123"
    buffer = (
        f"{own}: bad seek to 1024\n"
        "/tmp/imgpipe-other: bad seek to 512\n"
        "VipsJpeg: premature end of JPEG image\n"
        "VipsJpeg: premature end of JPEG image\n"
        "vipspng: libpng read error\n"
        f'VipsForeignLoad: "{own}" is not a known file format\n'
    )
    detail = vips_detail(buffer, own, ("VipsJpeg", "jpegload"))
    assert detail == "premature end of JPEG image; is not a known file format"
    assert "/" not in detail and "libpng" not in detail


def test_clip_cuts_at_a_word() -> None:
    text = "alpha beta gamma delta " * 20
    cut = clip(text, 50)
    assert len(cut) <= 52 and cut.endswith(" …")
    assert all(word in {"alpha", "beta", "gamma", "delta"} for word in cut[:-2].split())
    assert clip("short", 50) == "short"
