"""/docs and /redoc come from the app itself: every script, style and font is on its own origin.

(That they render with no network at all is tests/cli/test_newcomer.py, in Chromium.)
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.unit

_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_docs_page_names_only_its_own_origin(client: TestClient, page: str) -> None:
    got = client.get(page)
    assert got.status_code == 200
    urls = [a or b for a, b in _URL.findall(got.text)]
    assert urls, "the page loads its bundle from somewhere"
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "googleapis" not in got.text and "jsdelivr" not in got.text
    for url in urls:
        if url.startswith("/docs-assets/"):
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000, url
            assert "default-src 'none'" in asset.headers["content-security-policy"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_policy_allows_the_pages_inline_script_by_hash_and_no_other_origin(
    client: TestClient, page: str
) -> None:
    got = client.get(page)
    policy = dict(
        part.strip().split(" ", 1) for part in got.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    sources = " ".join(policy.values()).split()
    assert not [s for s in sources if "://" in s or s in {"*", "https:", "http:"}], sources
    inline = re.findall(r"<script>(.*?)</script>", got.text, re.DOTALL)
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"].split()
    assert "'unsafe-inline'" not in policy["script-src"]


def test_an_unknown_asset_is_a_problem_not_a_path(client: TestClient) -> None:
    got = client.get("/docs-assets/../../etc/passwd")
    assert got.status_code == 404
    got = client.get("/docs-assets/nope.js")
    assert got.status_code == 404
    assert "/site-packages" not in got.text
