"""The encoder table: the one place an output format is described, read by the config."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from processor.core.config import OutputFormat, Quality, RenditionSpec
from processor.core.encoders import ENCODERS, encoder
from processor.core.keys import CONTENT_TYPES, EXTENSIONS

pytestmark = pytest.mark.unit


def test_one_entry_per_output_format_and_one_quality_field_per_setting() -> None:
    assert set(typing.get_args(OutputFormat)) == set(ENCODERS)
    fields = [s.field for e in ENCODERS.values() for s in e.settings]
    assert sorted(fields) == sorted(Quality.model_fields)
    assert {n: (e.content_type, e.extension) for n, e in ENCODERS.items()} == {
        n: (CONTENT_TYPES[n], EXTENSIONS[n]) for n in ENCODERS
    }


def test_config_validation_reads_the_ranges_and_defaults_from_the_table() -> None:
    defaults = Quality()
    for entry in ENCODERS.values():
        for s in entry.settings:
            assert getattr(defaults, s.field) == s.default
            Quality(**{s.field: s.low})
            Quality(**{s.field: s.high})
            for wrong in (s.low - 1, s.high + 1):
                with pytest.raises(ValidationError, match=s.field):
                    Quality(**{s.field: wrong})


def test_a_format_without_an_entry_is_a_config_error_never_another_formats_bytes() -> None:
    with pytest.raises(ValueError, match="no encoder for output format 'bmp'"):
        encoder("bmp")
    with pytest.raises(ValidationError, match="formats"):
        RenditionSpec(name="a", folder="a", width=1, height=1, formats=("bmp",))  # type: ignore[arg-type]


def test_what_the_table_says_about_alpha_and_animation() -> None:
    assert ENCODERS["jpeg"].with_alpha == "png" and not ENCODERS["jpeg"].alpha
    assert [n for n, e in ENCODERS.items() if e.animation] == ["webp"]
    assert [n for n, e in ENCODERS.items() if e.memory_per_pixel] == ["avif"]
