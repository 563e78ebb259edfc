"""Base settings from the environment (IMGPIPE_*), validated once at cold start.

Domain code never reads os.environ: entry points build one of these (or a subclass: the
processor's, the API's) and pass values in. pydantic-settings names the variable that is wrong.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
