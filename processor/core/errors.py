"""Errors that carry their own decision.

Each error says what a person is told (``message``), a stable machine code (``code``) and
whether trying again can help (``retryable``). Callers decide once, on the class, never on
the text.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error this project raises on purpose."""

    code: str = "internal_error"
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- the image itself is bad: permanent, never retried ---------------------------------


class ImageRejected(PipelineError):
    """The upload cannot be turned into renditions; retrying gives the same answer."""

    code = "image_rejected"


class UnsupportedFormat(ImageRejected):
    code = "unsupported_format"


class ImageTooLarge(ImageRejected):
    """More input bytes, or a wider or taller image, than the configured limit."""

    code = "too_large"


class TooManyPixels(ImageRejected):
    """Width x height above the configured limit: refused from the header, before decoding."""

    code = "too_many_pixels"


class TooManyFrames(ImageRejected):
    """An animated input with more frames than the configured limit."""

    code = "too_many_frames"


class ImageTooCostly(ImageRejected):
    """Decoding would need more memory than this function allows per image (from the header).

    Permanent for this function: on one with more memory, `imgpipe reprocess --ids` retries it.
    """

    code = "too_costly"


class TimeBudgetExceeded(ImageRejected):
    """The image computed past its time budget and libvips was stopped (the record: failed).

    Never retried by the queue (it would run out of time again, five times, then sit in the
    dead-letter queue); after a bigger function or budget, `imgpipe reprocess --ids` retries it.
    One exception, decided by the service: a try that was starved of CPU is tried once more,
    later and alone (processor/rules/tries.py), before a timeout is final.
    """

    code = "timeout"


class ProcessingInterrupted(ImageRejected):
    """The function was stopped (its timeout, or its memory) in the middle of this image on
    every try it was given: recorded failed rather than left ``processing`` until the
    message reaches the dead-letter queue. A bigger function may finish it (then reprocess)."""

    code = "interrupted"


class CorruptImage(ImageRejected):
    """The header may read, but the pixels do not: truncated or damaged data."""

    code = "corrupt_image"


class EmptyImage(ImageRejected):
    code = "empty_image"


# --- the world around the image -----------------------------------------------------------


class SourceMissing(PipelineError):
    """The object vanished before it could be read: skip, do not retry forever."""

    code = "source_missing"


class TransientError(PipelineError):
    """Throttling, timeouts, 5xx: the same work may succeed later, so let the queue retry."""

    code = "transient_error"
    retryable = True


class ConcurrentWrite(TransientError):
    """Another write of the same image, for an event at least as new, was saved between this
    one's read and its save: the state it wrote decides what happens next."""

    code = "concurrent_write"


class CdnBusy(TransientError):
    """The CDN refuses more invalidations until some in progress finish (CloudFront: 3,000
    paths, or 15 wildcard paths, in progress per distribution). Minutes, not seconds: the
    flusher fails its batch, whose messages come back after the invalidations queue's
    visibility timeout (processor/entrypoints/flush.py)."""

    code = "cdn_busy"


class NotEnoughTime(PipelineError):
    """Too little of the invocation is left to give this image its time budget: not started.

    Nothing was written; the queue delivers the message again (a new invocation, a full clock).
    """

    code = "deferred"
    retryable = True


class StaleEvent(PipelineError):
    """A newer event for the same key has already been applied: this one is dropped."""

    code = "stale_event"


class AwsServiceError(PipelineError):
    """Any other AWS refusal (permissions, a missing table, a bad request).

    Not transient, but not the image's fault either: once the setup is fixed the same
    message succeeds, so the queue keeps it (retry, then the dead-letter queue for redrive).
    """

    code = "aws_error"
    retryable = True


class UploadNotFound(PipelineError):
    """The multipart upload id is unknown for this key, or already completed or aborted."""

    code = "upload_not_found"


class InvalidParts(PipelineError):
    """S3 refused the part list: a part is missing, its ETag differs, or a part is too small."""

    code = "invalid_parts"


class RangeNotSatisfiable(PipelineError):
    """A byte range outside the object (HTTP 416)."""

    code = "range_not_satisfiable"


class MalformedMessage(PipelineError):
    """A queue body that is no event or message we know: retrying cannot make it readable."""

    code = "malformed_message"


class InvalidCursor(PipelineError, ValueError):
    """A list cursor this API did not sign for this listing (forged, truncated, reused)."""

    code = "invalid_cursor"


class ConfigError(PipelineError):
    """A setting is missing or wrong; raised at cold start, naming the setting."""

    code = "config_error"


# --- the tools around the pipeline: local stack, CLI, deploy, benchmarks ----------------------


class StackError(PipelineError):
    """The local stack cannot start; the message says what to change."""

    code = "stack_error"


class InvocationFailed(PipelineError):
    """A local invocation failed as a whole: the handler raised, timed out or its process died."""

    code = "invocation_failed"


class Refused(PipelineError):
    """The API (or S3) said no to the upload command: ``code`` and ``message`` come from its
    problem document."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DeployError(PipelineError):
    """A deploy step failed in a way a person can act on; the message says what to do."""

    code = "deploy_error"


class UnresolvedReference(PipelineError, KeyError):
    """The template reader met a Ref/GetAtt it has no value for: pass it in ``refs``."""

    code = "unresolved_reference"


# --- sizes made on demand (processor/core/sizes.py, processor/service/ondemand.py) ----------


class SizeNotAllowed(PipelineError):
    """A size, fit or format outside the allowed set: refused before anything is read."""

    code = "size_not_allowed"


class NoSuchRendition(PipelineError):
    """No done image has this id and content version (or the path names no rendition)."""

    code = "no_such_rendition"


class OnDemandLimit(PipelineError):
    """The image (or the caller) has had as many sizes made on demand as it may."""

    code = "on_demand_limit"


class RenditionInProgress(TransientError):
    """Another request is making this very size: ask again in a moment."""

    code = "rendition_in_progress"


class WorkerError(PipelineError, RuntimeError):
    """A benchmark worker died, hung or never became ready."""

    code = "worker_error"


# Refused from the header for what decoding would cost: counted apart (ImagesOverLimit).
OVER_LIMIT_CODES = frozenset(
    cls.code for cls in (ImageTooLarge, TooManyPixels, TooManyFrames, ImageTooCostly)
)
