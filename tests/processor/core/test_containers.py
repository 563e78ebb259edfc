"""An animation's facts read from its container alone (APNG chunks, an AVIF sequence's
track), against the facts measured independently in tests/samples/manifest.json."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from PIL import Image

from processor.core import apng, avis
from tests.conftest import GOOD, ROOT

pytestmark = pytest.mark.unit

SAMPLES = ROOT / "tests" / "samples"
MANIFEST = list(json.loads((SAMPLES / "manifest.json").read_text())["files"])


@pytest.mark.parametrize(
    "facts", [f for f in MANIFEST if f["format"] == "apng"], ids=lambda f: f["file"]
)
def test_apng_frames_delays_and_loop(facts: dict[str, object]) -> None:
    animation = apng.read(SAMPLES / str(facts["file"]), 1000)
    assert animation is not None
    assert len(animation.frames) == facts["frames"]  # the default image only when it plays
    assert [f.delay_ms for f in animation.frames] == [round(d) for d in facts["durations_ms"]]  # type: ignore[attr-defined]
    assert animation.loop == facts["loop"]


def test_each_apng_frame_is_rebuilt_as_a_png_any_decoder_reads() -> None:
    path = SAMPLES / "pillow/apng/dispose_op_none_region.png"
    animation = apng.read(path, 1000)
    assert animation is not None
    data = path.read_bytes()
    for frame in animation.frames:
        image = Image.open(io.BytesIO(apng.frame_png(animation, frame, data)))
        image.load()
        assert image.size == (frame.width, frame.height)


def test_a_plain_png_is_no_animation_and_a_limit_stops_the_reading(tmp_path: Path) -> None:
    assert apng.read(GOOD / "with-alpha.png", 1000) is None
    with pytest.raises(apng.TooMany):
        apng.read(SAMPLES / "pillow/apng/blend_op_over_near_transparent.png", 100)
    cut = tmp_path / "cut.png"
    cut.write_bytes((SAMPLES / "pillow/iss634.apng").read_bytes()[:200_000])
    with pytest.raises(apng.ApngError, match="runs past the end"):
        apng.read(cut, 1000)


def test_a_frame_outside_the_canvas_is_refused(tmp_path: Path) -> None:
    data = bytearray((SAMPLES / "pillow/apng/dispose_op_none.png").read_bytes())
    at = data.index(b"fcTL") + 4  # its data: sequence, width, height, x, y, ...
    struct.pack_into(">I", data, at + 12, 100)  # x = 100 on a 128-wide canvas, 128 wide
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(apng.ApngError, match="outside the canvas"):
        apng.read(bad, 1000)


@pytest.mark.parametrize(
    "facts",
    [f for f in MANIFEST if f["format"] == "avif-sequence"],
    ids=lambda f: f["file"],
)
def test_avif_sequence_delays(facts: dict[str, object]) -> None:
    sequence = avis.read(SAMPLES / str(facts["file"]), 1000)
    assert sequence is not None
    assert sequence.frames == facts["frames"]
    assert list(sequence.delays_ms) == [round(d) for d in facts["durations_ms"]]  # type: ignore[attr-defined]


def test_an_avif_still_has_no_sequence_and_a_limit_stops_the_reading() -> None:
    assert avis.read(GOOD / "pitm.avif", 1000) is None
    with pytest.raises(avis.AvisError, match="more than 4 frames"):
        avis.read(SAMPLES / "link-u/star-8bpc.avifs", 4)
