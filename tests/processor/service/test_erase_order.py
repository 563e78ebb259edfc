"""Erasing a deleted image removes its delete marker last, so a half-done erase never brings
the original back in raw/."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from processor.core.errors import TransientError
from processor.core.ports import ObjectVersion
from processor.service.erase import Eraser

pytestmark = pytest.mark.unit

KEY = "raw/cat.jpg"
ORIGINAL = ObjectVersion(KEY, "v1", is_latest=False)
MARKER = ObjectVersion(KEY, "m1", is_latest=True, is_delete_marker=True)


class Store:
    """Versions of one original. With ``fail_first`` the first DeleteObjects call fails for
    its object versions and succeeds for its delete markers (S3 answers per key)."""

    def __init__(self, *, fail_first: bool) -> None:
        self.versions = [ORIGINAL, MARKER]
        self.calls: list[list[str]] = []
        self.fail_first = fail_first

    def list_versions(self, bucket: str, prefix: str) -> list[ObjectVersion]:
        return [v for v in self.versions if v.key.startswith(prefix)]

    def delete_versions(self, bucket: str, versions: Sequence[ObjectVersion]) -> None:
        self.calls.append([v.version_id for v in versions])
        if self.fail_first:
            self.fail_first = False
            self.versions = [v for v in self.versions if not (v in versions and v.is_delete_marker)]
            raise TransientError("DeleteObjects: some versions failed")
        self.versions = [v for v in self.versions if v not in versions]

    def current(self) -> ObjectVersion | None:
        """What a GET of the key finds: the newest version left (this list is oldest first)."""
        return self.versions[-1] if self.versions else None


def _eraser(store: Store) -> Eraser:
    return Eraser(store=store, cdn=None, bucket="b", public_prefix="public/")  # type: ignore[arg-type]


def test_the_delete_marker_goes_after_the_versions_behind_it() -> None:
    store = Store(fail_first=False)
    _eraser(store).erase("id", KEY, folders=[])
    assert store.calls == [["v1"], ["m1"]]
    assert store.versions == []


def test_a_failed_erase_leaves_the_marker_so_the_original_stays_deleted() -> None:
    store = Store(fail_first=True)
    with pytest.raises(TransientError):
        _eraser(store).erase("id", KEY, folders=[])
    # The marker is still the current version: raw/ shows no object, and the retry finishes.
    assert store.current() == MARKER
    _eraser(store).erase("id", KEY, folders=[])
    assert store.versions == []
