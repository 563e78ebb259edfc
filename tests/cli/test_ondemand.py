"""Any allowed size on demand, through the local stack: the embedded AWS over real HTTP, the
real processor and engine, and the CDN stand-in's origin group (S3 first, the on-demand
function on S3's 404).

GIVEN a processed photo
WHEN a size outside the eager ladder is asked for through the CDN
THEN it is made once (one S3 object version, one claim on the record), listed on the record
as made on demand, served from S3 from then on; fifty concurrent first requests make it once;
a size outside the allowed set is refused before anything is made; deleting the image takes
its sizes with it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import pyvips

from cli.local.stack import LocalStack
from processor.core.keys import image_id
from processor.rules.invalidations import covers
from tests.cli.conftest import aws_client, in_process_stack
from tests.cli.test_deletion import invalidated_paths, versions_left, wait_for
from tests.conftest import GOOD, ROOT

# One stack for the module: its tests share it (and its processed photo) on one worker.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(240),
    pytest.mark.xdist_group("ondemand_stack"),
]

KEY = "an-on-demand-test-key-0123456789"
PHOTO = GOOD / "flowers.jpeg"  # 1920 x 1080
DOC = ROOT / "docs" / "sizes.md"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with in_process_stack("sizes", KEY) as started:
        yield started


def processed(stack: LocalStack) -> dict[str, Any]:
    """The photo, uploaded straight to the bucket and processed: its API view."""
    assert stack.urls is not None and stack.resources is not None
    s3 = aws_client("s3", stack.urls.aws or "")
    key = f"raw/{uuid.uuid4().hex}/flowers.jpeg"
    s3.put_object(Bucket=stack.resources.bucket, Key=key, Body=PHOTO.read_bytes())
    iid = image_id(stack.resources.bucket, key)
    with httpx.Client(base_url=stack.urls.api, timeout=30) as client:

        def done() -> dict[str, Any] | None:
            r = client.get(f"/images/{iid}", headers={"x-api-key": KEY})
            return r.json() if r.status_code == 200 and r.json()["status"] == "done" else None

        view: dict[str, Any] = wait_for(done)
    return view


@pytest.fixture(scope="module")
def image(stack: LocalStack) -> dict[str, Any]:
    """One processed photo the tests share (none deletes it)."""
    return processed(stack)


def version_of(view: dict[str, Any]) -> str:
    """The content version, read from an eager rendition's URL."""
    match = re.search(r"-([0-9a-f]{10})\.[a-z]+$", view["renditions"][0]["url"])
    assert match is not None
    return match.group(1)


def raw_item(stack: LocalStack, iid: str) -> dict[str, Any]:
    assert stack.urls is not None and stack.resources is not None
    dynamodb = aws_client("dynamodb", stack.urls.aws or "")
    item: dict[str, Any] = dynamodb.get_item(
        TableName=stack.resources.table, Key={"id": {"S": iid}}, ConsistentRead=True
    )["Item"]
    return item


def claims(stack: LocalStack, iid: str) -> int:
    """Sizes claimed on the image's item: every make starts with one."""
    return int(raw_item(stack, iid).get("sizes_claimed", {"N": "0"})["N"])


def versions_of(stack: LocalStack, key: str) -> int:
    return versions_left(stack, f"public/{key}").count(f"public/{key}")


def pixels(data: bytes) -> tuple[int, int]:
    decoded = pyvips.Image.new_from_buffer(data, "")
    return decoded.width, decoded.height


def test_the_first_request_makes_it_and_the_second_finds_it_stored(
    stack: LocalStack, image: dict[str, Any]
) -> None:
    assert stack.urls is not None
    iid, version = image["id"], version_of(image)
    path = f"sizes/{iid}-{version}-640w.jpg"
    with httpx.Client(base_url=stack.urls.cdn, timeout=60) as cdn:
        # WHEN the size is first asked for
        first = cdn.get(f"/{path}")
        # THEN it comes back made, with the renditions' headers
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "image/jpeg"
        assert "immutable" in first.headers["cache-control"]
        assert pixels(first.content) == (640, 360)
        # ... stored once, claimed once, listed on the record as made on demand
        assert versions_of(stack, path) == 1
        assert claims(stack, iid) == 1
        view = httpx.get(f"{stack.urls.api}/images/{iid}").json()
        (made,) = [r for r in view["renditions"] if r["on_demand"]]
        assert made["url"] == f"{stack.urls.cdn}/{path}"
        assert (made["width"], made["height"], made["format"]) == (640, 360, "jpeg")
        # ... and not in the eager srcset, but in the one listing every allowed width
        assert path not in view["srcset"]["jpeg"]
        assert f"{stack.urls.cdn}/{path} 640w" in view["srcset_on_demand"]["jpeg"]

        # WHEN it is asked for again: the same bytes, from S3, and nothing made
        second = cdn.get(f"/{path}")
        assert second.status_code == 200
        assert second.content == first.content
        assert versions_of(stack, path) == 1
        assert claims(stack, iid) == 1


def test_fifty_concurrent_first_requests_make_it_once(
    stack: LocalStack, image: dict[str, Any]
) -> None:
    assert stack.urls is not None
    iid, version = image["id"], version_of(image)
    before = claims(stack, iid)
    path = f"sizes/{iid}-{version}-768w.webp"
    with httpx.Client(base_url=stack.urls.cdn, timeout=90) as cdn:
        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(lambda _: cdn.get(f"/{path}"), range(50)))
    assert {r.status_code for r in responses} == {200}, {r.text for r in responses}
    assert len({r.content for r in responses}) == 1
    assert pixels(responses[0].content) == (768, 432)
    assert versions_of(stack, path) == 1
    assert claims(stack, iid) == before + 1


def test_a_cover_box_is_cut_to_the_box(stack: LocalStack, image: dict[str, Any]) -> None:
    assert stack.urls is not None
    path = f"sizes/{image['id']}-{version_of(image)}-320x320-cover.webp"
    r = httpx.get(f"{stack.urls.cdn}/{path}", timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp"
    assert pixels(r.content) == (320, 320)


@pytest.mark.parametrize(
    ("shape", "status", "code"),
    [
        ("641w.jpg", 400, "size_not_allowed"),  # not a step
        ("0640w.jpg", 400, "size_not_allowed"),  # a second spelling of a step
        ("99999w.jpg", 400, "size_not_allowed"),
        ("640x360-stretch.jpg", 400, "size_not_allowed"),  # a fit the engine does not have
        ("640x361-cover.jpg", 400, "size_not_allowed"),
        ("640w.gif", 400, "size_not_allowed"),  # a format the encoder table does not have
        ("640w.html", 400, "size_not_allowed"),
    ],
)
def test_a_size_outside_the_set_is_refused_and_nothing_is_made(
    stack: LocalStack, image: dict[str, Any], shape: str, status: int, code: str
) -> None:
    assert stack.urls is not None
    iid = image["id"]
    before = claims(stack, iid)
    path = f"sizes/{iid}-{version_of(image)}-{shape}"
    r = httpx.get(f"{stack.urls.cdn}/{path}", timeout=30)
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert claims(stack, iid) == before
    assert versions_of(stack, path) == 0


def test_another_content_version_or_image_is_not_found(
    stack: LocalStack, image: dict[str, Any]
) -> None:
    assert stack.urls is not None
    for path in (
        f"sizes/{image['id']}-0000000000-640w.jpg",
        f"sizes/{'a' * 26}-{version_of(image)}-640w.jpg",
        "sizes/not-a-size.jpg",
    ):
        r = httpx.get(f"{stack.urls.cdn}/{path}", timeout=30)
        assert r.status_code == 404, path


def doc_example() -> str:
    """The responsive <img> of docs/sizes.md, exactly as written there."""
    match = re.search(r"```html\n(<img.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match is not None, "docs/sizes.md has no ```html <img ...> example"
    return match.group(1)


def test_the_docs_responsive_example_loads_every_candidate(
    stack: LocalStack, image: dict[str, Any]
) -> None:
    """The doc's placeholders (CDN, id, version) filled in; every URL of its src and srcset
    answers with an image of the width its descriptor says."""
    assert stack.urls is not None
    html = (
        doc_example()
        .replace("https://d111111abcdef8.cloudfront.net", stack.urls.cdn)
        .replace("IMAGE_ID", image["id"])
        .replace("VERSION", version_of(image))
    )
    srcset = re.search(r'srcset="([^"]+)"', html)
    src = re.search(r'\ssrc="([^"]+)"', html)
    assert srcset is not None and src is not None
    candidates = [c.strip().split() for c in srcset.group(1).split(",")]
    assert len(candidates) >= 4
    with httpx.Client(timeout=60) as client:
        for url, descriptor in candidates:
            r = client.get(url)
            assert r.status_code == 200, (url, r.text)
            assert pixels(r.content)[0] == int(descriptor.removesuffix("w"))
        assert client.get(src.group(1)).status_code == 200


def test_deleting_the_image_takes_its_sizes_with_it(stack: LocalStack) -> None:
    assert stack.urls is not None
    image = processed(stack)  # its own: the other tests keep theirs
    iid, version = image["id"], version_of(image)
    path = f"/sizes/{iid}-{version}-480w.jpg"
    with httpx.Client(timeout=60) as client:
        assert client.get(f"{stack.urls.cdn}{path}").status_code == 200  # made and cached
        box = f"{stack.urls.cdn}/sizes/{iid}-{version}-320x320-cover.webp"
        assert client.get(box).status_code == 200
        made = versions_left(stack, f"public/sizes/{iid}")
        assert len(made) == 2
        r = client.delete(f"{stack.urls.api}/images/{iid}", headers={"x-api-key": KEY})
        assert r.status_code == 202, r.text
        # THEN no version of any size is left, the CDN forgot them, and none is made again
        wait_for(lambda: not versions_left(stack, f"public/sizes/{iid}"))
        # (the flusher sends the paths within its window)
        wanted = {f"/{k.removeprefix('public/')}" for k in made}
        wait_for(lambda: all(covers(invalidated_paths(stack), p) for p in wanted))
        wait_for(lambda: client.get(f"{stack.urls.cdn}{path}").status_code == 404)
        assert not versions_left(stack, f"public/sizes/{iid}")
