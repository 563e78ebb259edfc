"""What an open gallery asks the API for: never the whole list again, only what can have changed.

GIVEN a local stack with a dozen images done, and the gallery open in headless Chromium
WHEN it sits idle for a few polls
THEN each poll reads only the newest few records (one small page), no record by id
WHEN three more images are uploaded next to it (not through the page)
THEN they appear done in the grid, read through the newest page and single reads only.

Why a test of the mechanism and not of speed: comparing two measured times is noise on a shared
machine. The speed it buys (uploads with two galleries open against none, as a ratio measured
in one run) is benchmarks/gallery.py.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.cli.conftest import StackProcess
from tests.cli.test_browser import CHROMIUM, CHROMIUM_ARGS, upload
from tests.conftest import GOOD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("local_stack"),
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

FIRST = sorted(GOOD.glob("*.jpg"))[:12]
LATER = [GOOD / "4.webp", GOOD / "flowers.jpeg", GOOD / "Landscape_9.jpg"]
NEWEST_MIN = 2  # gallery.js: an idle poll reads this many of the newest images
POLL_S = 1.5


def wait_done(client: httpx.Client, api: str, ids: list[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    for iid in ids:
        while True:
            got = client.get(f"{api}/images/{iid}")
            if got.status_code == 200 and got.json()["status"] != "processing":
                break
            assert time.monotonic() < deadline, f"{iid} not processed in {timeout_s} s"
            time.sleep(0.3)


def test_the_gallery_asks_only_for_what_changed() -> None:
    from playwright.sync_api import Response, sync_playwright

    assert len(FIRST) == 12 and all(p.exists() for p in LATER)
    stack = StackProcess.start("--concurrency", "2")
    try:
        with httpx.Client(timeout=30) as client:
            wait_done(client, stack.api, [upload(client, stack, p) for p in FIRST])
            seen: list[Response] = []
            reads: list[tuple[str, dict[str, list[str]], int]] = []

            def on_response(response: Response) -> None:
                url = urlsplit(response.url)
                if url.path.startswith("/images") and response.request.method == "GET":
                    seen.append(response)

            def read_so_far() -> list[tuple[str, dict[str, list[str]], int]]:
                """(path, query, records read) of each API read, bodies read now, not in the
                event handler (Playwright's sync API cannot call back from there)."""
                for response in seen[len(reads) :]:
                    url = urlsplit(response.url)
                    ok = response.status == 200
                    records = int(response.json().get("count", 1)) if ok else 0
                    reads.append((url.path, parse_qs(url.query), records))
                return reads

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page()
                    page.on("response", on_response)
                    page.goto(stack.api + "/")
                    page.wait_for_function(
                        "() => document.querySelectorAll('.card[data-status=done]').length === 12",
                        timeout=30_000,
                    )
                    # The first read: one page, the only one.
                    first = read_so_far()[0]
                    assert first[0] == "/images" and first[2] == 12, first

                    # WHEN: idle for a few polls
                    idle_from = len(read_so_far())
                    page.wait_for_timeout(4 * POLL_S * 1000)
                    idle = read_so_far()[idle_from:]
                    assert len(idle) >= 2, reads
                    for path, query, records in idle:
                        assert path == "/images", "nothing is processing: no single reads"
                        assert query == {"limit": [str(NEWEST_MIN)]}, query
                        assert records == NEWEST_MIN

                    # WHEN: three images arrive from elsewhere
                    busy_from = len(read_so_far())
                    later = [upload(client, stack, p) for p in LATER]
                    wait_done(client, stack.api, later)
                    page.wait_for_function(
                        "() => document.querySelectorAll('.card[data-status=done]').length === 15",
                        timeout=30_000,
                    )
                    busy = read_so_far()[busy_from:]
                finally:
                    browser.close()
            for path, query, records in busy:
                if path == "/images":
                    # The newest few; when more arrived than asked for, twice as many next.
                    limit = int(query["limit"][0])
                    assert "status" in query or limit <= 2 * (NEWEST_MIN + len(LATER)), query
                    assert records <= limit
                else:
                    assert path.rsplit("/", 1)[1] in later, "a single read is of a new image"
            # Fifteen images known; what the page read while they arrived is a small multiple
            # of the three that changed, not fifteen per poll.
            polls = sum(1 for path, query, _ in busy if path == "/images" and "status" not in query)
            assert sum(r for *_, r in busy) <= polls * NEWEST_MIN + 6 * len(LATER)
    finally:
        assert stack.stop() == 0, stack.output
