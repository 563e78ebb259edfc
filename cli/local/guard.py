"""What every local server refuses before it does any work: another host's name, another
site's page, a body it cannot bound.

A browser on this machine is the local stack's one dangerous client. Any page it has open can
send "simple" requests (form posts, navigations, ``fetch`` with ``mode: "no-cors"``) to a
loopback port without a CORS preflight, and a page whose own DNS name is re-pointed at
127.0.0.1 (DNS rebinding) reaches the port as if it were its own origin. Three facts tell
those requests apart from the stack's own pages and from tools (the AWS CLI, boto3, curl):

- ``Host``: a rebinding page's requests carry its own name; tools and the stack's pages carry
  a loopback name (``*.localhost`` names resolve to loopback in every browser, never through
  DNS, so they cannot be rebound);
- ``Origin`` (every cross-origin request but a GET navigation) or, failing that, ``Referer``:
  the page that sent it;
- ``Sec-Fetch-Site``: sent by current browsers on every request to a loopback address, even
  when the page suppressed its referrer; ``none`` means the user typed or opened the URL.

Tools send none of the last three. Pure functions: the WSGI guard of the embedded AWS
(cli/local/aws.py), the ASGI middleware of the API and CDN (cli/local/stack.py) and the
OIDC issuer (cli/local/oidc.py) share them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from urllib.parse import urlsplit

from cli.local import LOOPBACK_NAMES

# API Gateway's HTTP APIs refuse a payload over 10 MB (a quota that cannot be raised): the
# local API refuses what the deployed one never receives.
API_MAX_BODY_BYTES = 10 * 1000 * 1000


class Refused(Exception):
    """A request a local server answers with ``status`` and ``reason``, doing nothing else."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


def host_name(host_header: str | None) -> str:
    """The name in a ``Host`` header (no port, no brackets, lower case); "" if unreadable."""
    try:
        return (urlsplit(f"//{host_header or ''}").hostname or "").lower()
    except ValueError:  # "[::1" and the like
        return ""


def is_loopback_name(name: str, bound: Collection[str] = ()) -> bool:
    return name in LOOPBACK_NAMES or name in bound or name.endswith(".localhost")


def check_host(host_header: str | None, bound: Collection[str] = ()) -> None:
    if not is_loopback_name(host_name(host_header), bound):
        raise Refused(421, "invalid_host", "this server answers to loopback names only")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as browsers write an ``Origin``; "" if it has none."""
    try:
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            return ""
        return f"{parts.scheme}://{parts.netloc}".lower()
    except ValueError:
        return ""


def page_origins(url: str) -> frozenset[str]:
    """A page's origin under every loopback name it can be opened with (same port)."""
    parts = urlsplit(url)
    names = {parts.hostname or "", *LOOPBACK_NAMES}
    shown = {f"[{n}]" if ":" in n else n for n in names}
    return frozenset(f"{parts.scheme}://{n}:{parts.port}" for n in shown)


def check_site(get: Callable[[str], str | None], pages: Collection[str]) -> None:
    """Refuse a browser request that no page of ``pages`` (origins) sent.

    ``get`` reads a request header by its lower-case name. A request that carries none of
    Origin, Referer and Sec-Fetch-Site (or ``Sec-Fetch-Site: none``, the user's own
    navigation) is a tool's, and passes.
    """
    origin = get("origin")
    if origin is not None:
        if origin.strip().lower() not in pages:
            raise Refused(403, "cross_site", "requests from other sites' pages are refused")
        return
    referer = get("referer")
    if referer:
        if origin_of(referer.strip()) not in pages:
            raise Refused(403, "cross_site", "requests from other sites' pages are refused")
        return
    site = (get("sec-fetch-site") or "").strip().lower()
    if site and site != "none":
        raise Refused(403, "cross_site", "a browser request that hides its page is refused")


def content_length(value: str | None, limit: int) -> int | None:
    """The declared body size, checked: None when absent; a 400 for anything but one
    non-negative decimal number (``-1`` made a reader take the whole stream), a 413 past
    ``limit``."""
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise Refused(400, "bad_request", "Content-Length must be a non-negative number")
    if len(text) > len(str(limit)) or int(text) > limit:
        raise Refused(413, "too_large", f"the body is over {limit} bytes")
    return int(text)
