"""A real browser on the gallery: headless Chromium (Debian's package) driven by Playwright.

GIVEN a local stack with a few images already processed
WHEN two files are picked in the gallery page (one goes up as a presigned POST, the other as a
multipart upload whose part ETags the page must be allowed to read)
THEN their uploads end done, their thumbnails appear in the grid over the dominant colour,
the detail view shows the optimized image, and a screenshot of the gallery is saved (to
docs/gallery.png, which README shows, when IMGPIPE_UPDATE_SCREENSHOT=1; otherwise to the test's
temporary folder, so a test run leaves the work tree as it was). And /docs and /redoc render
with every non-loopback request blocked: their bundles are served by the app itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.cli.conftest import StackProcess
from tests.conftest import BAD, GOOD, ROOT

CHROMIUM = Path("/usr/bin/chromium")
README_SCREENSHOT = ROOT / "docs" / "gallery.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Shown in the grid behind the uploaded file, so the screenshot has something to show.
BACKGROUND = [
    GOOD / "Landscape_1.jpg",
    GOOD / "flowers.jpeg",
    GOOD / "4.webp",
    GOOD / "5_webp_a.webp",
    GOOD / "animated-loop-3.gif",
    GOOD / "gamma_dalai_lama_gray.jpg",
    GOOD / "Channel_digital_image_CMYK_color.jpg",
    BAD / "truncated.jpg",
]
PICKED = GOOD / "Landscape_9.jpg"  # 93 KB: one presigned POST
PICKED_BIG = GOOD / "Portrait_6.jpg"  # 136 KB: a multipart upload, as the page is told below
MULTIPART_FROM = 100_000

NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium); "
    "Playwright's own browser download cannot work here",
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("local_stack"),
    pytest.mark.timeout(180),
    NEEDS_CHROMIUM,
]


def upload(client: httpx.Client, stack: StackProcess, path: Path) -> str:
    content_type = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(
        path.suffix[1:].lower(), "image/gif"
    )
    form = client.post(
        f"{stack.api}/uploads",
        json={"filename": path.name, "content_type": content_type},
        headers={"x-api-key": stack.api_key},
    ).json()
    with path.open("rb") as f:
        stored = client.post(
            form["url"], data=form["fields"], files={"file": (path.name, f, content_type)}
        )
    assert stored.status_code in (200, 201, 204), stored.text
    return str(form["id"])


def test_gallery_uploads_and_shows_a_thumbnail(fake_aws: None, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    stack = StackProcess.start("--concurrency", "2")
    try:
        with httpx.Client(timeout=30) as client:
            for path in BACKGROUND:
                upload(client, stack, path)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                errors: list[str] = []
                requests: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
                page.goto(f"{stack.api}/?multipart_from={MULTIPART_FROM}")
                assert page.title() == "imgpipe gallery"

                # WHEN: two files are picked in the page, one small, one "big"
                assert PICKED.stat().st_size < MULTIPART_FROM < PICKED_BIG.stat().st_size
                page.set_input_files("#picker", [str(PICKED), str(PICKED_BIG)])

                # THEN: both upload rows end done and the cards show loaded thumbnails
                page.wait_for_function(
                    "() => document.querySelectorAll('.uploads li .state.done').length === 2",
                    timeout=60_000,
                )
                rows = page.inner_text(".uploads")
                assert PICKED.name in rows and PICKED_BIG.name in rows
                assert any(r.startswith("POST") and r.endswith("/uploads") for r in requests)
                assert any("/uploads/multipart/" in r and "/complete" in r for r in requests)
                assert any(r.startswith("PUT") and "partNumber=1" in r for r in requests)
                big = page.locator(".card", has_text=PICKED_BIG.name)
                big.locator(".thumb img.loaded").wait_for(timeout=30_000)
                card = page.locator(".card", has_text=PICKED.name)
                card.locator(".thumb img.loaded").wait_for(timeout=30_000)
                assert card.get_attribute("data-status") == "done"
                natural = card.locator("img").evaluate("img => img.naturalWidth")
                assert 0 < natural <= 320
                # the placeholder colour is the image's dominant colour
                colour = card.locator(".thumb").evaluate("el => el.style.backgroundColor")
                assert colour.startswith("rgb")

                # the other images (and the failed one with its reason) are there too
                page.wait_for_function(
                    "n => document.querySelectorAll('.card .thumb img.loaded').length >= n",
                    arg=sum(p.parent == GOOD for p in BACKGROUND) + 2,  # and the picked ones
                    timeout=60_000,
                )
                failed = page.locator('.card[data-status="failed"]')
                assert "corrupt_image" in failed.inner_text()
                page.wait_for_timeout(500)  # let the fade-in finish
                shot = (
                    README_SCREENSHOT
                    if os.environ.get("IMGPIPE_UPDATE_SCREENSHOT") == "1"
                    else tmp_path / "gallery.png"
                )
                page.screenshot(path=str(shot))
                assert shot.stat().st_size > 10_000  # a rendered page, not a blank one

                # THEN: the detail view shows the optimized image and its metadata
                card.click()
                detail = page.locator("#detail[open]")
                detail.locator("picture img").wait_for(timeout=10_000)
                assert "optimized" in detail.inner_text()
                # each still rendition's score (on by default), in a plausible range
                scores = detail.locator("#detail-renditions td.score").all_inner_texts()
                assert scores and all(50 <= float(s) <= 100 for s in scores), scores
                page.wait_for_function(
                    "() => { const i = document.querySelector('#detail[open] picture img');"
                    " return i && i.complete && i.naturalWidth > 0; }",
                    timeout=10_000,
                )
                # ... then the size the view needs, made on demand by the CDN (docs/sizes.md)
                page.wait_for_function(
                    "() => { const i = document.querySelector('#detail[open] picture img');"
                    " return i && i.currentSrc.includes('/sizes/') && i.complete"
                    " && i.naturalWidth > 0; }",
                    timeout=30_000,
                )
                # the browser took the first source it reads: AVIF (made on demand too)
                shown = page.evaluate(
                    "() => document.querySelector('#detail[open] picture img').currentSrc"
                )
                assert shown.endswith(".avif"), shown
                assert errors == []
            finally:
                browser.close()
    finally:
        assert stack.stop() == 0, stack.output


# ReDoc's bundle hard-codes its "by Redocly" footer logo from a CDN and hides it when it cannot
# load: the policy refusing it is the policy working, and the page is whole without it.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.parametrize(
    ("page_path", "rendered"),
    [
        # Swagger UI has drawn the operations (from /openapi.json) and their schemas.
        ("/docs", "() => document.querySelectorAll('.opblock').length >= 5"),
        # ReDoc has drawn the operations into its side menu.
        ("/redoc", "() => document.querySelectorAll('li[data-item-id]').length > 5"),
    ],
)
def test_api_docs_render_with_no_network(
    stack: StackProcess, page_path: str, rendered: str
) -> None:
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []
    csp: list[str] = []
    errors: list[str] = []

    def only_loopback(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in {"127.0.0.1", "localhost", "::1"}:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console",
                lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None,
            )
            response = page.goto(stack.api + page_path)
            assert response is not None and response.status == 200
            page.wait_for_function(rendered, timeout=60_000)
            assert "imgpipe API" in page.title()
            assert "GET" in page.inner_text("body") or "get" in page.inner_text("body").lower()
        finally:
            browser.close()
    assert blocked == [], f"{page_path} asked the internet for {blocked}"
    assert [m for m in csp if REDOC_LOGO not in m] == [], csp
    assert errors == []
