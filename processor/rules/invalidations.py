"""Which paths one flush of the invalidations queue asks the CDN to forget. Pure.

Every erase puts its image's paths on the invalidations queue (exact paths, or per-image
wildcards, processor/core/cdn.py ``coalesce``); the flusher takes what gathered during its
batching window and sends ONE invalidation for all of it. CloudFront bills each path past
1,000 a month (a wildcard path counts as one) and holds at most 15 wildcard paths in progress
per distribution, so the plan is:

- exact paths while there are not too many (``max_exact``): the deletes of a window cost what
  they cost one by one and evict nothing else. A folder wildcard evicts every cached rendition
  of the folder, which a busy site's edges then fetch again (hundreds of thousands of misses),
  so a trickle of deletes must stay exact; only a bulk delete, whose exact paths would cost
  dollars a minute and fill CloudFront's 3,000 in progress, is folded;
- otherwise wildcards ``/<folder>/<id[:L]>*`` with the longest id prefix L (from the whole id
  down to none) whose wildcards number at most ``max_wildcards``: at L = ``ID_LENGTH`` each
  wildcard is one image's (ids have a fixed length), below it a wildcard also evicts other
  images' cached renditions, which the CDN then fetches again from S3 (collateral: a miss,
  never a wrong answer);
- ``/*`` when even one wildcard per folder is too many.

``max_wildcards`` is 5 so that three flushes may be in progress at once under CloudFront's
15; ``max_exact`` (500, InvalidationExactPaths) leaves room for the flushes of the last
minute or two under its 3,000 exact paths. At most ``max(max_exact, max_wildcards)`` paths are
billed per flush whatever the window held.
"""

from __future__ import annotations

from collections.abc import Iterable

from processor.core.keys import ID_LENGTH

# Up to this many exact paths, a flush sends them as they are, with no collateral: about 80
# deletes a window with the default renditions (6 paths each), $2.50 of paths at most.
MAX_EXACT_PER_FLUSH = 500
# At most this many wildcard paths per flush: three flushes fit CloudFront's 15 in progress.
MAX_WILDCARDS_PER_FLUSH = 5
EVERYTHING = "/*"


def _split(path: str) -> tuple[str, str]:
    """(folder with its trailing slash, the name's stem: without a trailing ``*``)."""
    folder, _, name = path.rpartition("/")
    return folder + "/", name.removesuffix("*")


def fold(paths: Iterable[str], length: int) -> set[str]:
    """Each path as ``<folder>/<stem[:length]>*``. A wildcard path whose stem is already
    shorter than ``length`` stays as it is (it covers more than the fold would)."""
    return {folder + stem[:length] + "*" for folder, stem in map(_split, paths)}


def minimal(paths: Iterable[str]) -> list[str]:
    """Sorted, without the paths another wildcard of them already covers. In stem order the
    paths a wildcard covers come right after it, so one pass finds them."""
    kept: list[str] = []
    wildcard: str | None = None  # the stem of the last wildcard kept
    for path in sorted(set(paths), key=lambda p: (p.removesuffix("*"), not p.endswith("*"))):
        stem = path.removesuffix("*")
        if wildcard is not None and stem.startswith(wildcard):
            continue
        kept.append(path)
        if path.endswith("*"):
            wildcard = stem
    return sorted(kept)


def plan_flush(
    paths: Iterable[str],
    *,
    max_exact: int = MAX_EXACT_PER_FLUSH,
    max_wildcards: int = MAX_WILDCARDS_PER_FLUSH,
) -> list[str]:
    """Sorted paths that cover every one of ``paths``: exact while at most ``max_exact``,
    else at most ``max_wildcards`` prefix wildcards (the longest prefix that fits), else
    ``/*``. Nothing in, nothing out."""
    given = minimal(p for p in paths if p)
    if len(given) <= max_exact or given == [EVERYTHING]:
        return given
    # Fewer paths as the prefix shortens, never more: the first that fits is the longest.
    for length in range(ID_LENGTH, -1, -1):
        folded = minimal(fold(given, length))
        if len(folded) <= max_wildcards:
            return folded
    return [EVERYTHING]


def depth(planned: Iterable[str]) -> int | None:
    """The id prefix length of a folded plan (for the log), None for exact paths or ``/*``
    alone."""
    stems = [_split(p)[1] for p in planned if p.endswith("*") and p != EVERYTHING]
    return max((len(s) for s in stems), default=None)


def covers(planned: Iterable[str], path: str) -> bool:
    """Whether a CloudFront invalidation of ``planned`` covers ``path`` (an exact path, or
    a wildcard path: every path it stands for). A trailing ``*`` matches any characters."""
    for p in planned:
        if p.endswith("*"):
            if path.removesuffix("*").startswith(p[:-1]):
                return True
        elif p == path:
            return True
    return False
