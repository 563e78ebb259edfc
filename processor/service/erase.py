"""Erase one deleted image for good: every S3 version of its original and renditions, and
the CDN's cached copies. Ports only (ObjectStore, CdnInvalidator), called by the service
once the image's tombstone is saved.

Order, chosen so that a retry after a failure at any step finds what is left to do:

1. list every version and delete marker of the original and of ``<folder>/<id>*`` in each
   rendition folder (ids have a fixed length: that prefix holds this image's files only);
2. hand the CDN paths of every rendition key seen to the CDN port (the objects themselves
   are already deleted, so the CDN's next fetch of them misses). In AWS that port is the
   invalidations queue: one message per erase, which the flusher merges with the other
   erases of its window into one CloudFront invalidation. A failure here raises before
   anything is purged, and the retry lists the same keys again, so nothing is purged
   without its paths durably recorded;
3. delete those versions: the renditions and the original's object versions first, its
   delete markers last. Deleting the marker first would make the original current again in
   ``raw/`` until the rest went too, and for good if the rest then failed. A live current
   original is never touched: it is a newer upload of the same key, whose own event the
   processor handles. S3 reports each version deleted here as ``ObjectRemoved:Delete`` with
   that version's id; the processor recognises those echoes of an erase and skips them
   (decide_removal), so one delete is one tombstone and one ``ImagesDeleted``.

Erasing twice is harmless: the second listing finds nothing, and nothing is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from processor.core.cdn import coalesce
from processor.core.keys import rendition_prefix
from processor.core.ports import CdnInvalidator, ObjectStore, ObjectVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Erased:
    versions: int  # object versions and delete markers deleted for good
    paths: tuple[str, ...]  # CDN paths handed to the CDN port


class Eraser:
    def __init__(
        self,
        *,
        store: ObjectStore,
        cdn: CdnInvalidator | None,
        bucket: str,
        public_prefix: str,
    ) -> None:
        self.store = store
        self.cdn = cdn  # None: no CDN in front of the bucket (tests, a bare local bucket)
        self.bucket = bucket
        self.public_prefix = public_prefix

    def erase(self, image_id: str, source_key: str | None, folders: Iterable[str]) -> Erased:
        """``source_key`` None: the original is read in place, not the pipeline's to erase."""
        prefix = self.public_prefix
        prefixes = [prefix + rendition_prefix(f, image_id) for f in sorted(set(folders))]
        renditions = [v for p in prefixes for v in self.store.list_versions(self.bucket, p)]
        originals = [
            v
            for v in (self.store.list_versions(self.bucket, source_key) if source_key else [])
            if v.key == source_key and not _live(v)
        ]
        paths = coalesce(v.key.removeprefix(self.public_prefix) for v in renditions)
        if paths and self.cdn is not None:
            self.cdn.invalidate(paths)
        doomed = [*renditions, *originals]
        markers = [v for v in originals if v.is_delete_marker]
        first = [v for v in doomed if v not in markers]
        if first:
            self.store.delete_versions(self.bucket, first)
        if markers:  # only once every version behind them is gone (raises otherwise)
            self.store.delete_versions(self.bucket, markers)
        if doomed:
            log.info("image erased", extra={"versions": len(doomed), "cdn_paths": len(paths)})
        return Erased(versions=len(doomed), paths=tuple(paths))


def _live(version: ObjectVersion) -> bool:
    return version.is_latest and not version.is_delete_marker
