"""The processor Lambda's settings (IMGPIPE_*), validated once at cold start."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from processor.core.config import EngineConfig, Limits, MiB, RenditionSpec
from processor.core.settings import AwsSettings
from processor.core.sources import Source, check_sources, parse_sources
from processor.rules.invalidations import MAX_EXACT_PER_FLUSH
from processor.rules.tries import ONE_VCPU_MB, cpu_share


class ProcessorSettings(AwsSettings):
    """The processor Lambda's settings."""

    # JSON list of renditions, e.g. '[{"name":"thumb","folder":"thumbs","width":320,...}]'.
    renditions: tuple[RenditionSpec, ...] | None = None
    max_input_bytes: int = Field(Limits().max_input_bytes, ge=1)
    max_pixels: int = Field(Limits().max_pixels, ge=1)
    max_pixels_whole: int = Field(Limits().max_pixels_whole, ge=1)
    max_dimension: int = Field(Limits().max_dimension, ge=1)
    max_frames: int = Field(Limits().max_frames, ge=1)
    max_animation_pixels: int = Field(Limits().max_animation_pixels, ge=1)
    max_animation_ms: int = Field(Limits().max_animation_ms, ge=1)
    # The frame (from 0) an animated upload's still renditions show.
    poster_frame: int = Field(EngineConfig().poster_frame, ge=0)
    # libvips operation cache: warm containers live long, so keep it small.
    vips_cache_max: int = Field(0, ge=0)
    # The function's memory in MB, as Lambda sets it. Unset (outside Lambda, without the
    # local stack): no memory budget per image.
    function_memory_mb: int | None = Field(
        None, ge=128, validation_alias="AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
    )
    # MB of the function kept for the runtime (Python, boto3, Powertools, libvips itself:
    # about 150 MB once warm) and the S3 bodies in flight; the rest is shared by the images.
    memory_reserve_mb: int = Field(256, ge=0)
    # Images one invocation works on at once on a multi-vCPU function: the next image decodes
    # while this one's last (largest) encode runs (entrypoints/batch.py). Each gets an equal
    # share of the memory. A function of ONE_VCPU_MB or less runs one at a time whatever it says.
    images_at_once: int = Field(2, ge=1, le=16)
    # Seconds one image may compute; the handler starts an image only with this much time
    # left in the invocation (plus time_reserve_s), so the default fits the 120 s timeout.
    image_time_budget_s: float = Field(30.0, gt=0)
    # Seconds kept back per image for S3 reads and writes and the DynamoDB commit.
    time_reserve_s: float = Field(10.0, ge=0)
    # Seconds before a try that was starved of CPU comes back (alone) for its second try;
    # SQS delays a message by at most 900 s. It goes to IMGPIPE_QUEUE_URL: without a queue a
    # starved timeout is final.
    retry_delay_s: int = Field(60, ge=0, le=900)

    @model_validator(mode="after")
    def _memory_left(self) -> ProcessorSettings:
        memory = self.function_memory_mb
        if memory is not None and memory <= self.memory_reserve_mb:
            raise ValueError(
                f"IMGPIPE_MEMORY_RESERVE_MB ({self.memory_reserve_mb}) leaves nothing of the "
                f"function's {memory} MB (AWS_LAMBDA_FUNCTION_MEMORY_SIZE) for images"
            )
        return self

    @property
    def images_in_flight(self) -> int:
        """Images the handler really runs at once: ``images_at_once``, or 1 on one vCPU (at or
        below ONE_VCPU_MB a second image in flight would only share the core)."""
        memory = self.function_memory_mb
        if memory is not None and memory <= ONE_VCPU_MB:
            return 1
        return self.images_at_once

    @property
    def cpu_share(self) -> float:
        """The CPUs one image can count on (processor/rules/tries.py): starvation is judged
        against it."""
        return cpu_share(self.function_memory_mb)

    @property
    def image_memory_bytes(self) -> int | None:
        """What one image may use: the function's memory less the reserve, shared by the
        images in flight (so two overlapping images never need more than the function has)."""
        if self.function_memory_mb is None:
            return None
        share = (self.function_memory_mb - self.memory_reserve_mb) // self.images_in_flight
        return share * MiB

    # The invalidations queue: a deleted image's CDN paths go there, and the flusher turns a
    # window of them into one CloudFront invalidation. Unset: no CDN to tell (tests, a bare
    # bucket).
    invalidation_queue_url: str | None = Field(None, min_length=1)
    # The EventBridge bus that completion events go to (processor/core/changes.py); unset:
    # none are published. Their image views link renditions under the CDN's base URL.
    event_bus: str | None = Field(None, min_length=1)
    cdn_base_url: str = ""
    # Where originals may be read in place besides raw/ (processor/core/sources.py):
    # "bucket/prefix" entries, separated by commas. Empty: only uploads.
    backfill_sources: str = ""

    @property
    def sources(self) -> tuple[Source, ...]:
        return parse_sources(self.backfill_sources)

    @model_validator(mode="after")
    def _sources_readable(self) -> ProcessorSettings:
        check_sources(self.sources, bucket=self.bucket, public_prefix=self.public_prefix)
        return self

    @cached_property
    def engine_config(self) -> EngineConfig:
        limits = Limits(
            max_input_bytes=self.max_input_bytes,
            max_pixels=self.max_pixels,
            max_pixels_whole=self.max_pixels_whole,
            max_dimension=self.max_dimension,
            max_frames=self.max_frames,
            max_animation_pixels=self.max_animation_pixels,
            max_animation_ms=self.max_animation_ms,
            max_image_memory=self.image_memory_bytes,
            max_seconds=self.image_time_budget_s,
        )
        if self.renditions is None:
            return EngineConfig(limits=limits, poster_frame=self.poster_frame)
        return EngineConfig(
            renditions=self.renditions, limits=limits, poster_frame=self.poster_frame
        )


class FlushSettings(BaseSettings):
    """The flusher's settings (processor/entrypoints/flush.py): only where its CDN is."""

    model_config = SettingsConfigDict(env_prefix="IMGPIPE_", extra="ignore")

    # The CloudFront distribution in front of the public prefix.
    distribution_id: str = Field(min_length=1)
    # Exact paths a flush may send before folding them into wildcards (InvalidationExactPaths):
    # CloudFront holds 3,000 in progress, shared by the flushes of the last minute or two.
    exact_paths: int = Field(MAX_EXACT_PER_FLUSH, ge=0, le=1000)
    # Local stack or tests: e.g. http://127.0.0.1:4566. Unset means real AWS.
    endpoint_url: str | None = None
    region: str = Field("us-east-1", validation_alias="AWS_REGION")
