"""The on-demand service's decisions on in-memory ports: what a miss reads, claims, makes,
writes and lists, and what it does when another request or a newer state gets there first."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import IO, Any

import pytest

from processor.core.errors import (
    NoSuchRendition,
    OnDemandLimit,
    RenditionInProgress,
    SizeNotAllowed,
)
from processor.core.ports import IMMUTABLE
from processor.core.record import ImageFacts, ImageRecord, RenditionInfo, Status
from processor.core.sizes import OnDemandConfig
from processor.service.ondemand import CallerWindow, OnDemand
from tests.fakes.processor import MemoryStore

pytestmark = pytest.mark.unit

BUCKET, IID, VER = "b", "kz2y6v3k4qj7m2xq5w3ggz6d4e", "1a2b3c4d5e"
EAGER = RenditionInfo(
    name="optimized",
    key=f"optimized/{IID}-{VER}.jpg",
    format="jpeg",
    content_type="image/jpeg",
    width=2048,
    height=1536,
    bytes=9,
)


def record(**facts: Any) -> ImageRecord:
    made = ImageFacts(sha256="0" * 64, input_bytes=9, format="jpeg", width=4000, height=3000)
    return ImageRecord.first_sight(
        image_id=IID, bucket=BUCKET, source_key="raw/a.jpg", now="t"
    ).done(
        now="t",
        sequencer="01",
        config_version="c",
        content_version=VER,
        facts=made.model_copy(update=facts),
        renditions=[EAGER],
        processing_ms=1,
        timings={},
    )


@dataclass
class Made:
    format: str
    width: int
    height: int
    animated: bool
    data: bytes


class Renderer:
    def __init__(self) -> None:
        self.sources: list[bytes] = []

    def render(self, source: IO[bytes], spec: Any, *, time_budget_s: float | None = None) -> Made:
        self.sources.append(source.read())
        return Made(spec.formats[0], spec.width, spec.width * 3 // 4, False, b"made")


class Claims:
    """SizeClaims in memory: one claim per key, the per-image bound, the listing once."""

    def __init__(self, stored: ImageRecord | None) -> None:
        self.stored = stored
        self.claimed: dict[str, int] = {}
        self.count = 0
        self.lock = threading.Lock()
        self.moved_on = False  # a newer state lands between the make and the listing

    def get(self, image_id: str) -> ImageRecord | None:
        return self.stored

    def claim_size(
        self,
        image_id: str,
        *,
        key: str,
        content_version: str,
        now: int,
        stale_before: int,
        max_per_image: int,
    ) -> bool:
        with self.lock:
            r = self.stored
            if r is None or r.status is not Status.done or r.content_version != content_version:
                raise NoSuchRendition("gone")
            if key in self.claimed and self.claimed[key] >= stale_before:
                return False
            if self.count >= max_per_image:
                raise OnDemandLimit("bound")
            self.claimed[key] = now
            self.count += 1
            return True

    def add_size(self, image_id: str, *, content_version: str, info: RenditionInfo) -> bool:
        if self.moved_on:
            assert self.stored is not None
            self.stored = self.stored.model_copy(update={"content_version": "newer00000"})
            return False
        assert self.stored is not None
        self.stored = self.stored.model_copy(update={"renditions": [*self.stored.renditions, info]})
        return True


def service(claims: Claims, store: MemoryStore, **kw: Any) -> OnDemand:
    return OnDemand(
        store=store,
        claims=claims,
        engine=kw.pop("engine", Renderer()),
        config=kw.pop("config", OnDemandConfig()),
        bucket=BUCKET,
        public_prefix="public/",
        sleep=lambda _: None,
        **kw,
    )


def world() -> tuple[Claims, MemoryStore]:
    store = MemoryStore()
    store.upload(BUCKET, "raw/a.jpg", b"original")
    store.upload(BUCKET, f"public/{EAGER.key}", b"eager")
    return Claims(record()), store


def test_a_miss_is_made_from_the_best_source_stored_and_listed() -> None:
    claims, store = world()
    engine = Renderer()
    served = service(claims, store, engine=engine).serve(f"/sizes/{IID}-{VER}-640w.webp")
    assert served.made and served.data == b"made" and served.content_type == "image/webp"
    assert engine.sources == [b"eager"]  # the 2048 rendition, not the 4000 px original
    stored = store.objects[(BUCKET, f"public/sizes/{IID}-{VER}-640w.webp")]
    assert (stored.content_type, stored.cache_control) == ("image/webp", IMMUTABLE)
    assert claims.stored is not None
    (listed,) = [r for r in claims.stored.renditions if r.on_demand]
    assert (listed.key, listed.width) == (f"sizes/{IID}-{VER}-640w.webp", 640)


def test_larger_than_any_rendition_comes_from_the_original() -> None:
    claims, store = world()
    engine = Renderer()
    service(claims, store, engine=engine).serve(f"/sizes/{IID}-{VER}-2048x2048-cover.png")
    assert engine.sources == [b"original"]


def test_a_stored_size_is_read_not_made() -> None:
    claims, store = world()
    store.upload(BUCKET, f"public/sizes/{IID}-{VER}-640w.jpg", b"before")
    served = service(claims, store).serve(f"/sizes/{IID}-{VER}-640w.jpg")
    assert (served.made, served.data) == (False, b"before")
    assert claims.count == 0


def test_a_size_someone_else_is_making_is_waited_for_then_503() -> None:
    claims, store = world()
    claims.claimed[f"sizes/{IID}-{VER}-640w.jpg"] = 10**12  # a fresh claim, not ours
    with pytest.raises(RenditionInProgress):
        service(claims, store, wait_s=0.01).serve(f"/sizes/{IID}-{VER}-640w.jpg")
    assert not [k for (_, k) in store.objects if k.startswith("public/sizes/")]


def test_a_size_made_while_the_image_moved_on_is_deleted_again() -> None:
    claims, store = world()
    claims.moved_on = True
    with pytest.raises(NoSuchRendition):
        service(claims, store).serve(f"/sizes/{IID}-{VER}-640w.jpg")
    assert (BUCKET, f"public/sizes/{IID}-{VER}-640w.jpg") not in store.objects


@pytest.mark.parametrize(
    ("stored", "path"),
    [
        (None, f"/sizes/{IID}-{VER}-640w.jpg"),
        (record().model_copy(update={"status": Status.failed}), f"/sizes/{IID}-{VER}-640w.jpg"),
        (record(), f"/sizes/{IID}-0000000000-640w.jpg"),
    ],
)
def test_only_a_done_image_at_the_paths_version(stored: ImageRecord | None, path: str) -> None:
    _, store = world()
    with pytest.raises(NoSuchRendition):
        service(Claims(stored), store).serve(path)


def test_jpeg_is_refused_for_an_image_with_alpha_before_anything_is_made() -> None:
    _, store = world()
    claims = Claims(record(has_alpha=True))
    with pytest.raises(SizeNotAllowed):
        service(claims, store).serve(f"/sizes/{IID}-{VER}-640w.jpg")
    assert claims.count == 0


def test_the_per_caller_window() -> None:
    now = [0.0]
    window = CallerWindow(2, clock=lambda: now[0])
    window.take("a")
    window.take("a")
    window.take("b")
    with pytest.raises(OnDemandLimit):
        window.take("a")
    now[0] = 61.0  # the next minute
    window.take("a")


def test_a_caller_over_its_window_leaves_no_claim() -> None:
    claims, store = world()
    ondemand = service(claims, store, config=OnDemandConfig(max_per_caller_minute=1))
    ondemand.serve(f"/sizes/{IID}-{VER}-640w.jpg", caller="198.51.100.7")
    with pytest.raises(OnDemandLimit):
        ondemand.serve(f"/sizes/{IID}-{VER}-480w.jpg", caller="198.51.100.7")
    assert claims.count == 1
