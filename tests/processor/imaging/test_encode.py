"""The encode step's save functions against the encoder table: complete, or no engine."""

from __future__ import annotations

import pytest

from processor.core.encoders import ENCODERS
from processor.imaging import encode

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
