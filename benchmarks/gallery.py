"""``python -m benchmarks.gallery``: a few hundred uploads with gallery tabs open, against none.

The first thing a new user does is drop a folder of photos on the gallery. This measures how
long N small uploads take to be processed by ``imgpipe local`` with no reader, then with
``--tabs`` real gallery pages open in headless Chromium (each polling as gallery.js does), each
scenario on a fresh stack, in the same run, and reports the ratio. The target: at most 2x.

Uploads go straight to the embedded S3's ``raw/`` prefix (as ``aws s3 cp`` would); all are
distinct bytes (identical ones would be deduplicated). "Processed" is read from the queue (no
message visible or in flight), which costs the stack nothing next to the readers measured.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.corpus import DEFAULT_CORPUS
from benchmarks.e2e import Stack
from benchmarks.pool import child_env

log = logging.getLogger("benchmarks.gallery")

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gallery.md"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TARGET_RATIO = 2.0


def small_photos(count: int, source: Path) -> list[bytes]:
    """``count`` distinct small JPEGs (~400 px) cut from one corpus photo."""
    import pyvips

    base = pyvips.Image.thumbnail(str(source), 480).copy_memory()  # decoded once, cut many times
    photos = []
    for n in range(count):
        # A different crop and a numbered stripe: distinct bytes, a real photo's content.
        x, y = n % 60, (n // 60) % 40
        tile = base.crop(x, y, min(400, base.width - x), min(300, base.height - y))
        tile = tile.draw_rect([n % 256, (n * 7) % 256, (n * 13) % 256], 0, 0, 40, 8, fill=True)
        photos.append(tile.jpegsave_buffer(Q=80))
    return photos


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    if b"cli.local.aws" in cmdline:
        return "embedded AWS (moto)"
    if b"spawn_main" in cmdline or b"multiprocessing" in cmdline:
        return "processor environments"
    if b"chrom" in cmdline or b"playwright" in cmdline or b"node" in cmdline:
        return "browser"
    return "stack (API, worker)"


def cpu_by_role(stack_pid: int) -> dict[str, float]:
    """CPU seconds so far of every process this one started (the stack and everything under
    it, the browser), by role. This process itself (it puts the uploads) is left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for pid in _descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        role = "stack (API, worker)" if pid == stack_pid else _role(pid)
        totals[role] = totals.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def _kind(url: str) -> str:
    """What a gallery request is for, in the report's words."""
    path = urlsplit(url).path
    if path == "/images":
        return "listings"
    if path.startswith("/images/"):
        return "single reads"
    if path.startswith(("/thumbs/", "/optimized/")):
        return "renditions"
    return "page and assets"


def _busy_cpus() -> float:
    """Load average over the last minute, for the report (the machine is shared)."""
    return os.getloadavg()[0]


def scenario(photos: list[bytes], tabs: int, logs: Path, timeout_s: float) -> dict[str, Any]:
    import boto3

    stack = Stack(child_env(), logs / f"stack-tabs{tabs}.log")
    browser = playwright = None
    try:
        info = stack.info
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        s3 = session.client("s3", endpoint_url=info["aws"])
        sqs = session.client("sqs", endpoint_url=info["aws"])
        pages = []
        requests: list[str] = []
        if tabs:
            from playwright.sync_api import sync_playwright

            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context()  # tabs of one browser: one cache
            for _ in range(tabs):
                page = context.new_page()
                page.on("request", lambda r: requests.append(_kind(r.url)))
                page.goto(info["api"] + "/")
                pages.append(page)
        load_before = _busy_cpus()
        cpu_before = cpu_by_role(stack.proc.pid)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: s3.put_object(
                        Bucket=info["bucket"],
                        Key=f"raw/bench-{n:04d}/photo-{n:04d}.jpg",
                        Body=photos[n],
                        ContentType="image/jpeg",
                    ),
                    range(len(photos)),
                )
            )
        uploaded_s = time.perf_counter() - t0
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        deadline = time.monotonic() + timeout_s
        while True:
            attrs = sqs.get_queue_attributes(QueueUrl=info["queue"], AttributeNames=names)
            if all(int(attrs["Attributes"][n]) == 0 for n in names):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not processed in {timeout_s} s")
            # Playwright's sync API dispatches the pages' events while it is called.
            if pages:
                pages[0].wait_for_timeout(250)
            else:
                time.sleep(0.25)
        wall_s = time.perf_counter() - t0
        cpu_after = cpu_by_role(stack.proc.pid)
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items() if k != "gone"}
        shown = [p.evaluate("document.querySelectorAll('.card').length") for p in pages]
        return {
            "tabs": tabs,
            "images": len(photos),
            "upload_s": uploaded_s,
            "wall_s": wall_s,
            "cards_shown": shown,
            "load_before": load_before,
            "load_after": _busy_cpus(),
            "cpu_s": cpu,
            "requests": {k: requests.count(k) for k in sorted(set(requests))},
        }
    finally:
        if browser is not None:
            browser.close()
        if playwright is not None:
            playwright.stop()
        stack.stop()


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    base = [r["wall_s"] for r in results if r["tabs"] == 0]
    busy = [r["wall_s"] for r in results if r["tabs"] > 0]
    ratio = (sum(busy) / len(busy)) / (sum(base) / len(base))
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    lines = [
        "# Uploads with the gallery open",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}.",
        "",
        f"Command: `python -m benchmarks.gallery --images {args.images} --tabs {args.tabs} "
        f"--rounds {args.rounds}`. Each scenario on a fresh `imgpipe local` (default "
        "concurrency); uploads put straight into `raw/`; done when the queue is empty.",
        "",
        f"**{args.tabs} gallery tabs / none: {ratio:.2f}x** (target ≤ {TARGET_RATIO:.0f}x: "
        f"**{verdict}**). A ratio measured in one run; the absolute times are this machine's.",
        "",
        "| tabs | images | all processed s | uploads put s | cards shown per tab | load avg "
        "before → after |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['tabs']} | {r['images']} | {r['wall_s']:.1f} | {r['upload_s']:.1f} | "
            f"{', '.join(map(str, r['cards_shown'])) or '-'} | "
            f"{r['load_before']:.2f} → {r['load_after']:.2f} |"
        )
    roles = sorted({k for r in results for k in r["cpu_s"]})
    lines += [
        "",
        "CPU seconds spent during each scenario, by role (processes alive at its end):",
        "",
        "| tabs | " + " | ".join(roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for r in results:
        lines.append(
            f"| {r['tabs']} | " + " | ".join(f"{r['cpu_s'].get(k, 0):.1f}" for k in roles) + " |"
        )
    lines += ["", "What the tabs asked the stack for, all tabs together:", ""]
    for r in results:
        if r["requests"]:
            asked = ", ".join(f"{n} {k}" for k, n in r["requests"].items())
            lines.append(f"- {r['tabs']} tabs: {asked}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gallery", description=__doc__)
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--tabs", type=int, default=2, help="gallery pages open in the second run")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds of both scenarios")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per scenario")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)  # not pyvips' own INFO lines
    if not CHROMIUM.exists():
        log.error("needs Debian's chromium at %s", CHROMIUM)
        return 2
    source = sorted(DEFAULT_CORPUS.glob("Landscape_*.jpg"))[0]
    photos = small_photos(args.images, source)
    results = []
    with tempfile.TemporaryDirectory(prefix="imgpipe-gallery-bench-") as logs:
        for _ in range(args.rounds):
            for tabs in (0, args.tabs):
                log.info("%d uploads, %d gallery tabs", args.images, tabs)
                results.append(scenario(photos, tabs, Path(logs), args.timeout))
                log.info("  %.1f s", results[-1]["wall_s"])
    text = report(results, args)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
