"""The encode step's save functions against the encoder table: complete, or no engine."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
import pyvips
from PIL import Image

from processor.core.encoders import ENCODERS
from processor.imaging import encode
from processor.imaging.pixels import hold
from processor.rules.plan import Encode
from tests.conftest import GOOD

pytestmark = pytest.mark.integration


def test_every_table_entry_has_its_save_function() -> None:
    encode.check_savers()
    assert set(encode.SAVERS) == set(ENCODERS)


def test_a_missing_or_extra_save_function_is_an_error_naming_it() -> None:
    # (Engine() runs this check when it is built, before any image)
    without_avif = {k: v for k, v in encode.SAVERS.items() if k != "avif"}
    with pytest.raises(RuntimeError, match=r"no save function for \['avif'\]"):
        encode.check_savers(without_avif)
    extra = {**encode.SAVERS, "bmp": encode.Saver(encode.save_png)}
    with pytest.raises(RuntimeError, match=r"no table entry for \['bmp'\]"):
        encode.check_savers(extra)
    still_webp = {**encode.SAVERS, "webp": encode.Saver(encode.save_webp)}
    with pytest.raises(RuntimeError, match="webp: the table and its save function disagree"):
        encode.check_savers(still_webp)


CAMERA_PHOTO = GOOD / "2569067123_aca715a2ee_o.jpg"


def _sof_markers(data: bytes) -> set[int]:
    """The start-of-frame markers of a JPEG: 0xC0 baseline, 0xC2 progressive."""
    found, i = set(), 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            found.add(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        i += 2 + length
    return found


@pytest.mark.parametrize(("effort", "sof"), [(0, 0xC0), (1, 0xC2), (2, 0xC2)])
def test_every_jpeg_effort_writes_a_jpeg_every_decoder_reads(
    effort: int, sof: int, tmp_path: Path
) -> None:
    # GIVEN a real photo at a thumbnail's size
    image = pyvips.Image.thumbnail(str(CAMERA_PHOTO), 320).copy_memory()
    # WHEN the engine writes its JPEG at each effort
    enc = Encode(format="jpeg", quality=80, effort=effort)
    data = encode.encode(hold(image), enc).data
    # THEN it is baseline (effort 0) or progressive, with no metadata, and decodes in
    # Pillow and in libjpeg-turbo's djpeg at the same size
    assert _sof_markers(data) == {sof}
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "JPEG" and im.size == (image.width, image.height)
        assert not im.info.get("exif") and not im.info.get("icc_profile")
    src = tmp_path / "r.jpg"
    src.write_bytes(data)
    out = subprocess.run(["djpeg", "-ppm", str(src)], capture_output=True, check=True).stdout
    assert out.startswith(b"P6\n%d %d\n" % (image.width, image.height))


def test_more_jpeg_effort_writes_fewer_bytes_at_the_same_setting_where_it_only_codes() -> None:
    # Efforts 0 and 1 change only the coding (Huffman tables, scans), never the pixels.
    image = pyvips.Image.thumbnail(str(CAMERA_PHOTO), 1024).copy_memory()
    files = [
        encode.encode(hold(image), Encode(format="jpeg", quality=80, effort=e)).data for e in (0, 1)
    ]
    decoded = [pyvips.Image.new_from_buffer(f, "") for f in files]
    assert decoded[0].subtract(decoded[1]).abs().max() == 0
    assert len(files[1]) < len(files[0])


def test_the_default_ladder_writes_avif_webp_and_a_progressive_jpeg_of_each_size() -> None:
    from processor.core.config import EngineConfig
    from processor.imaging.engine import Engine

    result = Engine(EngineConfig()).process(GOOD / "flowers.jpeg", image_id="img")
    got = {(o.info.name, o.info.format): o for o in result.outputs}
    assert set(got) == {(n, f) for n in ("thumb", "optimized") for f in ("avif", "webp", "jpeg")}
    for (name, fmt), o in got.items():
        im = pyvips.Image.new_from_buffer(o.data, "")
        assert (im.width, im.height) == (o.info.width, o.info.height), (name, fmt)
        if fmt == "jpeg":
            assert _sof_markers(o.data) == {0xC2}, name  # progressive: jpeg_effort 2
