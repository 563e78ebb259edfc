"""botocore errors -> project errors, in one place. Decisions by error code, never by text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from processor.core.errors import (
    AwsServiceError,
    InvalidParts,
    PipelineError,
    RangeNotSatisfiable,
    SourceMissing,
    StaleEvent,
    TransientError,
    UploadNotFound,
)

_MISSING = frozenset({"NoSuchKey", "NotFound", "404"})
_STALE = frozenset({"ConditionalCheckFailedException", "PreconditionFailed", "412"})
_INVALID_PARTS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
_TRANSIENT = frozenset(
    {
        # throttling, as S3, DynamoDB and SQS name it
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "503",
        # the service is having a moment
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
    }
)


def translate(error: Exception, what: str) -> PipelineError:
    """The project error for a botocore error raised while doing ``what``."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = f"{what}: {code or status} {error.response.get('Error', {}).get('Message', '')}"
        if code == "NoSuchUpload":
            return UploadNotFound(f"{what}: no such multipart upload")
        if code == "InvalidRange":
            return RangeNotSatisfiable(text.strip())
        if code in _INVALID_PARTS:
            return InvalidParts(text.strip())
        # A missing bucket or distribution is a broken setup, not a vanished object.
        if code in _MISSING or (
            status == 404 and code not in {"NoSuchBucket", "NoSuchDistribution"}
        ):
            return SourceMissing(text.strip())
        if code in _STALE:
            return StaleEvent(text.strip())
        if code in _TRANSIENT or status >= 500 or status == 429:
            return TransientError(text.strip())
        return AwsServiceError(text.strip())
    # Connection refused or reset, read and connect timeouts, a stream cut short.
    return TransientError(f"{what}: {type(error).__name__}: {error}")


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run an SDK call; re-raise its failure as the project error that carries the decision."""
    try:
        yield
    except (ClientError, BotoCoreError) as e:
        raise translate(e, what) from e
