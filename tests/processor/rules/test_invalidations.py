"""One invalidation per flush: the pure planning rule (the flusher applying it is tested in
tests/processor/entrypoints/test_flush.py, the whole path over HTTP in
tests/cli/test_deletion.py)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core.cdn import coalesce
from processor.core.keys import ID_LENGTH, image_id
from processor.rules.invalidations import (
    EVERYTHING,
    MAX_EXACT_PER_FLUSH,
    MAX_WILDCARDS_PER_FLUSH,
    covers,
    depth,
    plan_flush,
)

pytestmark = pytest.mark.unit

FORMATS = ("avif", "webp", "jpg")


def image_paths(iid: str, folders: tuple[str, ...] = ("thumbs", "optimized")) -> list[str]:
    """What one erase sends with the default renditions: 3 formats in 2 folders."""
    return [f"/{folder}/{iid}-0123456789.{ext}" for folder in folders for ext in FORMATS]


def an_id(seed: int) -> str:
    return image_id("bucket", f"raw/{seed}.jpg")


IDS = st.binary(min_size=16, max_size=16).map(
    lambda b: base64.b32encode(b).decode().rstrip("=").lower()
)


def test_one_delete_stays_exact() -> None:
    paths = image_paths(an_id(7))
    assert plan_flush(paths) == sorted(paths)
    assert depth(plan_flush(paths)) is None
    assert plan_flush([]) == []


def test_a_few_deletes_stay_exact_up_to_the_bound() -> None:
    paths = [p for n in range(3) for p in image_paths(an_id(n))]
    assert len(paths) <= MAX_EXACT_PER_FLUSH
    assert plan_flush(paths) == sorted(paths)


def test_past_the_bound_two_images_fold_into_their_own_wildcards() -> None:
    # 2 images x 6 paths, over an exact bound of 10: one wildcard per image and folder,
    # whole ids, so nothing of another image is evicted
    a, b = an_id(1), an_id(2)
    planned = plan_flush([*image_paths(a), *image_paths(b)], max_exact=10)
    assert planned == sorted(f"/{f}/{i}*" for f in ("thumbs", "optimized") for i in (a, b))
    assert len(planned) == 4 <= MAX_WILDCARDS_PER_FLUSH
    assert depth(planned) == ID_LENGTH


def test_the_prefix_shortens_until_the_wildcards_fit() -> None:
    # one folder, ids that share ever shorter prefixes: the longest prefix that fits wins
    ids = ["aaaa" + "b" * (ID_LENGTH - 4), "aaac" + "b" * (ID_LENGTH - 4), "abzz" + "c" * 22]
    paths = [f"/thumbs/{i}-0123456789.{ext}" for i in ids for ext in FORMATS]
    assert plan_flush(paths, max_exact=3, max_wildcards=3) == sorted(f"/thumbs/{i}*" for i in ids)
    assert plan_flush(paths, max_exact=3, max_wildcards=2) == ["/thumbs/aaa*", "/thumbs/abz*"]
    assert plan_flush(paths, max_exact=3, max_wildcards=1) == ["/thumbs/a*"]


def test_too_many_folders_for_the_bound_fall_back_to_everything() -> None:
    folders = tuple(f"f{n}" for n in range(MAX_WILDCARDS_PER_FLUSH + 1))
    paths = [p for n in range(4) for p in image_paths(an_id(n), folders)]
    assert plan_flush(paths, max_exact=3) == [EVERYTHING]
    # one folder per wildcard fits when there are just as many folders as the bound
    fitting = [p for n in range(4) for p in image_paths(an_id(n), folders[:-1])]
    assert plan_flush(fitting, max_exact=3) == sorted(f"/{f}/*" for f in folders[:-1])
    assert depth(plan_flush(fitting, max_exact=3)) == 0


def test_a_trickle_of_deletes_stays_exact_and_evicts_nothing_else() -> None:
    # a window of 80 deletes (6 paths each, the default ladder) is sent as it is: folding it
    # would evict every cached rendition of the folders
    paths = [p for n in range(80) for p in image_paths(an_id(n), ("thumbs", "optimized"))]
    assert len(set(paths)) == 480 <= MAX_EXACT_PER_FLUSH
    assert plan_flush(paths) == sorted(set(paths))
    more = [p for n in range(90) for p in image_paths(an_id(n), ("thumbs", "optimized"))]
    assert all(p.endswith("*") for p in plan_flush(more))


def test_an_erase_folded_per_image_merges_like_its_exact_paths() -> None:
    # an image with many sizes arrives as per-image wildcards (coalesce, over 50 paths)
    many = coalesce(f"sizes/{an_id(9)}-0123456789-{w}w.webp" for w in range(100, 160))
    assert many == [f"/sizes/{an_id(9)}*"]
    planned = plan_flush([*many, *image_paths(an_id(1))])
    assert planned == sorted([*many, *image_paths(an_id(1))])  # 7 paths: exact still
    # a path another wildcard covers is not sent twice
    assert plan_flush(["/thumbs/ab*", *image_paths("ab" + "c" * 24)], max_exact=2) == [
        "/optimized/abcccccccccccccccccccccccc*",
        "/thumbs/ab*",
    ]
    assert plan_flush(["/thumbs/ab*", "/thumbs/abc-1.jpg", "/thumbs/b.jpg"]) == [
        "/thumbs/ab*",
        "/thumbs/b.jpg",
    ]


def test_a_plan_that_asks_for_everything_is_everything() -> None:
    assert plan_flush(["/*", "/thumbs/x.jpg"]) == [EVERYTHING]
    assert covers([EVERYTHING], "/thumbs/anything.avif")


def test_covers_reads_paths_as_cloudfront_does() -> None:
    assert covers(["/thumbs/ab*"], "/thumbs/abc-1.jpg")
    assert covers(["/thumbs/ab*"], "/thumbs/abc*")  # a narrower wildcard
    assert not covers(["/thumbs/ab*"], "/thumbs/a*")  # a broader one
    assert not covers(["/thumbs/ab*"], "/optimized/abc-1.jpg")
    assert covers(["/thumbs/x.jpg"], "/thumbs/x.jpg")
    assert not covers(["/thumbs/x.jpg"], "/thumbs/x.jpg2")


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(IDS, min_size=1, max_size=400, unique=True),
    folders=st.lists(
        st.sampled_from(["thumbs", "optimized", "sizes", "a/b"]), min_size=1, max_size=4
    ).map(lambda f: tuple(sorted(set(f)))),
    max_exact=st.integers(0, 60),
    max_wildcards=st.integers(1, 15),
)
def test_every_plan_covers_every_path_within_its_bounds(
    ids: list[str], folders: tuple[str, ...], max_exact: int, max_wildcards: int
) -> None:
    paths = [p for i in ids for p in image_paths(i, folders)]
    planned = plan_flush(paths, max_exact=max_exact, max_wildcards=max_wildcards)
    # every deleted image's every rendition is covered by some path
    assert all(covers(planned, p) for p in paths)
    assert planned == sorted(set(planned))
    if len(set(paths)) <= max_exact:
        assert planned == sorted(set(paths))  # exact: no collateral at all
    else:
        # never more paths than the bound: what a flush is billed
        assert len(planned) <= max_wildcards
        assert all(p.endswith("*") for p in planned)
        # and the longest prefix that fits: one character more would not
        length = depth(planned)
        if planned == [EVERYTHING]:
            assert len(folders) > max_wildcards  # not even one wildcard per folder fits
        elif length is not None and length < ID_LENGTH:
            one_more = {
                f"{p.rpartition('/')[0]}/{p.rpartition('/')[2][: length + 1]}*" for p in paths
            }
            assert len(one_more) > max_wildcards
