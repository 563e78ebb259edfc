"""/docs and /redoc of a started `imgpipe local` render in headless Chromium with every
non-loopback request blocked: the bundles are served by the app itself."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.cli.conftest import StackProcess
from tests.cli.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("local_stack"),
    pytest.mark.timeout(240),
]

# ReDoc's bundle hard-codes its "by Redocly" footer logo from a CDN and hides it when it cannot
# load: the policy refusing it is the policy working, and the page is whole without it.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    started = StackProcess.start("--concurrency", "1")
    try:
        yield started
    finally:
        assert started.stop() == 0, started.output


# --- /docs offline ---------------------------------------------------------------------------


# --- the AWS CLI block -----------------------------------------------------------------------


# --- the documented commands -----------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
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
