"""When an erase whose CDN is busy comes back. Pure.

CloudFront holds at most 3,000 paths (15 with a wildcard) in invalidations in progress per
distribution, and finishes an invalidation in a minute or two. A bulk delete fills that
within a minute at the default rate; retrying within seconds only spends the message's
receives until the dead-letter queue. So an erase refused with ``TooManyInvalidationsInProgress``
is put back on the queue, delayed by minutes that double (with jitter, so a thousand
refused erases do not all come back at once), up to SQS's 15-minute delay: between 67
minutes and 2 h 14 min in all (``total_wait_s``); only then is it left to the queue's own
retries.
"""

from __future__ import annotations

FIRST_WAIT_S = 120
MAX_WAIT_S = 900  # SQS DelaySeconds' maximum
MAX_BUSY_TRIES = 12


def busy_wait_s(tries: int, jitter: float) -> int | None:
    """Seconds until try ``tries + 1`` of an erase the CDN refused on try ``tries`` (the
    first is 1), or None when it has waited enough. ``jitter``: uniform in [0, 1)."""
    if tries >= MAX_BUSY_TRIES:
        return None
    wait = min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** max(0, tries - 1))
    return max(1, int(wait / 2 + jitter * wait / 2))


def total_wait_s(jitter: float = 1.0) -> int:
    """The longest an erase waits for the CDN in all (``jitter`` 1: every wait in full)."""
    return sum(busy_wait_s(t, jitter) or 0 for t in range(1, MAX_BUSY_TRIES))
