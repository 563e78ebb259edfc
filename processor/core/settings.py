"""Base settings from the environment (IMGPIPE_*), validated once at cold start.

Domain code never reads os.environ: entry points build one of these (or a subclass: the
processor's, the API's) and pass values in. ``load`` is the one way settings are read: a
wrong or missing variable is a ConfigError that names it (the processor, the API and the CLI
alike).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from processor.core.errors import ConfigError
from processor.core.keys import DEFAULT_SHARDS, MAX_SHARDS
from processor.core.sizes import OnDemandConfig


class AwsSettings(BaseSettings):
    """Where the pipeline's AWS resources are. Shared by the processor, API and CLI."""

    model_config = SettingsConfigDict(env_prefix="IMGPIPE_", extra="ignore")

    bucket: str = Field(min_length=3, description="bucket holding raw/ uploads and public/ output")
    raw_prefix: str = "raw/"
    public_prefix: str = "public/"
    table: str = Field(min_length=3, description="DynamoDB table of image records")
    # Shards of the table's indexes (the template's ListShards): readers and writers agree.
    list_shards: int = Field(DEFAULT_SHARDS, ge=1, le=MAX_SHARDS)
    queue_url: str | None = None  # processing queue (reprocess sends here)
    dlq_url: str | None = None  # dead-letter queue (redrive reads here)
    # Local stack, LocalStack or tests: e.g. http://127.0.0.1:4566. Unset means real AWS.
    endpoint_url: str | None = None
    region: str = Field("us-east-1", validation_alias="AWS_REGION")
    # The sizes the CDN makes on their first request (IMGPIPE_ON_DEMAND, JSON; docs/sizes.md):
    # the API lists them, the on-demand function makes them.
    on_demand: OnDemandConfig = OnDemandConfig()

    @field_validator("raw_prefix", "public_prefix")
    @classmethod
    def _prefix_shape(cls, v: str) -> str:
        if not v.endswith("/") or v.startswith("/"):
            raise ValueError(f"a prefix ends with '/' and does not start with one, got {v!r}")
        return v


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """``cls`` from the environment; ConfigError naming every wrong or missing variable."""
    try:
        return cls()  # required fields come from the environment
    except ValidationError as e:
        problems = [f"{variable(cls, err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ConfigError("invalid settings: " + "; ".join(problems)) from e


def variable(cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """The environment variable behind a field (its alias, else prefix + name)."""
    if not loc:
        return cls.__name__  # a check across fields: its message names them
    name = str(loc[0])
    field = cls.model_fields.get(name)
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    return f"{cls.model_config.get('env_prefix', '')}{name}".upper()
