"""The processor Lambda's settings (IMGPIPE_*), validated once at cold start."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field

from processor.core.config import EngineConfig, Limits, RenditionSpec
from processor.core.settings import AwsSettings


class ProcessorSettings(AwsSettings):
    """The processor Lambda's settings."""

    # JSON list of renditions, e.g. '[{"name":"thumb","folder":"thumbs","width":320,...}]'.
    renditions: tuple[RenditionSpec, ...] | None = None
    max_input_bytes: int = Field(Limits().max_input_bytes, ge=1)
    max_pixels: int = Field(Limits().max_pixels, ge=1)
    max_dimension: int = Field(Limits().max_dimension, ge=1)
    # libvips operation cache: warm containers live long, so keep it small.
    vips_cache_max: int = Field(0, ge=0)

    @cached_property
    def engine_config(self) -> EngineConfig:
        limits = Limits(
            max_input_bytes=self.max_input_bytes,
            max_pixels=self.max_pixels,
            max_dimension=self.max_dimension,
        )
        if self.renditions is None:
            return EngineConfig(limits=limits)
        return EngineConfig(renditions=self.renditions, limits=limits)
