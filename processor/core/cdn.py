"""Which CDN paths to invalidate when an image is erased: a pure function of rendition keys.

CloudFront bounds invalidations in progress per distribution (3,000 exact paths, or 15 paths
with a wildcard) and bills per path, so a bulk delete must not spend one path per file when
fewer cover it. ``coalesce`` keeps exact paths while they are few, and otherwise folds them
into one wildcard per (folder, image): ``/thumbs/<id>*`` covers every format and content
version of that image and nothing of another, because ids have a fixed length.
"""

from __future__ import annotations

from collections.abc import Iterable

from processor.core.keys import ID_LENGTH

# At most this many exact paths per request before folding into wildcards: one image has a
# handful of renditions per content version, so a single delete keeps exact (cheap) paths.
MAX_EXACT_PATHS = 50
# CloudFront's own bounds (AWS quotas "invalidations in progress"): one request above them
# is refused outright, so the adapter splits a request into batches no larger than these.
MAX_PATHS_PER_REQUEST = 3000
MAX_WILDCARDS_PER_REQUEST = 15


def cdn_path(relative_key: str) -> str:
    """The CDN path of a key relative to the public prefix (the distribution's OriginPath)."""
    return "/" + relative_key.lstrip("/")


def _wildcard(path: str) -> str:
    folder, _, name = path.rpartition("/")
    if len(name) <= ID_LENGTH:
        return path  # not an "<id>-<version>.<ext>" file: keep it exact
    return f"{folder}/{name[:ID_LENGTH]}*"


def coalesce(relative_keys: Iterable[str], *, max_exact: int = MAX_EXACT_PATHS) -> list[str]:
    """Sorted, distinct paths that cover every key; wildcards once there are over ``max_exact``."""
    exact = sorted({cdn_path(k) for k in relative_keys if k})
    if len(exact) <= max_exact:
        return exact
    return sorted({_wildcard(p) for p in exact})


def batches(paths: list[str]) -> list[list[str]]:
    """``paths`` split so that no request exceeds CloudFront's per-request bounds."""
    out: list[list[str]] = []
    current: list[str] = []
    wildcards = 0
    for path in paths:
        wild = path.endswith("*")
        if current and (
            len(current) >= MAX_PATHS_PER_REQUEST
            or (wild and wildcards >= MAX_WILDCARDS_PER_REQUEST)
        ):
            out.append(current)
            current, wildcards = [], 0
        current.append(path)
        wildcards += wild
    if current:
        out.append(current)
    return out
