"""Settings from the environment (IMGPIPE_*), validated once at cold start.

Domain code never reads os.environ: entry points build one of these and pass values in.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from processor.config import EngineConfig, Limits, RenditionSpec


class AwsSettings(BaseSettings):
    """Where the pipeline's AWS resources are. Shared by the processor, API and CLI."""

    model_config = SettingsConfigDict(env_prefix="IMGPIPE_", extra="ignore")

    bucket: str = Field(min_length=3, description="bucket holding raw/ uploads and public/ output")
    raw_prefix: str = "raw/"
    public_prefix: str = "public/"
    table: str = Field(min_length=3, description="DynamoDB table of image records")
    queue_url: str | None = None  # processing queue (reprocess sends here)
    dlq_url: str | None = None  # dead-letter queue (redrive reads here)
    # Local stack, LocalStack or tests: e.g. http://127.0.0.1:4566. Unset means real AWS.
    endpoint_url: str | None = None
    region: str = Field("us-east-1", validation_alias="AWS_REGION")

    @field_validator("raw_prefix", "public_prefix")
    @classmethod
    def _prefix_shape(cls, v: str) -> str:
        if not v.endswith("/") or v.startswith("/"):
            raise ValueError(f"a prefix ends with '/' and does not start with one, got {v!r}")
        return v


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
