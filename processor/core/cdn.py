"""Which CDN paths an erased image needs invalidated: a pure function of rendition keys,
and the message that carries them to the flusher.

CloudFront bounds invalidations in progress per distribution (3,000 exact paths, or 15 paths
with a wildcard) and bills per path, so a bulk delete must not spend one path per file when
fewer cover it. ``coalesce`` keeps exact paths while they are few, and otherwise folds them
into one wildcard per (folder, image): ``/thumbs/<id>*`` covers every format and content
version of that image and nothing of another, because ids have a fixed length. The erase
puts them on the invalidations queue (``invalidation_message``); the flusher merges a
window's messages into one invalidation (processor/rules/invalidations.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from processor.core.errors import MalformedMessage
from processor.core.keys import ID_LENGTH

INVALIDATE = "imgpipe.invalidate"

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


def invalidation_message(paths: Sequence[str]) -> str:
    """The invalidations queue's body: the paths one erase needs the CDN to forget."""
    return json.dumps({"type": INVALIDATE, "paths": sorted(set(paths))})


def invalidation_paths(body: str) -> list[str]:
    """The paths of an invalidations queue body; MalformedMessage for anything else."""
    try:
        message = json.loads(body)
    except ValueError as e:
        raise MalformedMessage(f"not JSON: {e}") from e
    if not isinstance(message, dict) or message.get("type") != INVALIDATE:
        raise MalformedMessage(f"not an {INVALIDATE} message")
    paths = message.get("paths")
    if not isinstance(paths, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in paths
    ):
        raise MalformedMessage("its paths are not a list of strings starting with '/'")
    return list(paths)
