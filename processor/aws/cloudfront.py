"""CloudFrontInvalidator: the CDN port over CloudFront's CreateInvalidation.

Used by the flusher (processor/entrypoints/flush.py), which turns a window of erased images'
paths into one invalidation, against AWS or, locally, the embedded AWS's CloudFront API (the
CDN stand-in reads the same invalidations back). Least privilege: only the flusher's role may
call ``cloudfront:CreateInvalidation``, on its one distribution.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from processor.aws.errors import error_code, translate
from processor.core.cdn import batches
from processor.core.errors import CdnBusy, TransientError

log = logging.getLogger(__name__)

# CloudFront's answers that mean "later": its API rate, or too many invalidations in progress
# (a bulk delete). Retried here with backoff; then both are left to the invalidations queue
# (TransientError, CdnBusy), whose messages come back after its visibility timeout.
_BUSY = "TooManyInvalidationsInProgress"
_LATER = frozenset({_BUSY, "Throttling", "ThrottlingException"})


class CloudFrontInvalidator:
    def __init__(
        self,
        client: Any,
        distribution_id: str,
        *,
        attempts: int = 4,
        base_delay_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.distribution_id = distribution_id
        self._attempts = attempts
        self._base_delay_s = base_delay_s
        self._sleep = sleep

    def invalidate(self, paths: Sequence[str]) -> None:
        for batch in batches(sorted(set(paths))):
            self._create(batch)

    def _create(self, paths: list[str]) -> None:
        what = f"CreateInvalidation {self.distribution_id} ({len(paths)} paths)"
        # One reference per request: a retried request with the same reference and paths is
        # the same invalidation to CloudFront, not a second one.
        reference = f"imgpipe-{uuid.uuid4().hex}"
        for attempt in range(1, self._attempts + 1):
            try:
                self._client.create_invalidation(
                    DistributionId=self.distribution_id,
                    InvalidationBatch={
                        "Paths": {"Quantity": len(paths), "Items": paths},
                        "CallerReference": reference,
                    },
                )
                return
            except ClientError as e:
                if error_code(e) not in _LATER:
                    raise translate(e, what) from e
                if attempt == self._attempts:
                    error = CdnBusy if error_code(e) == _BUSY else TransientError
                    raise error(f"{what}: {error_code(e)} after {attempt} tries") from e
                # Full jitter: many processors throttled together must not retry together.
                delay = random.uniform(0, self._base_delay_s * 2 ** (attempt - 1))
                log.info("CloudFront says later", extra={"code": error_code(e), "delay_s": delay})
                self._sleep(delay)
            except BotoCoreError as e:
                raise translate(e, what) from e
