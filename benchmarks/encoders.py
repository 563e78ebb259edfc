"""The WebP encoder under every implementation, measured on its own.

The 2048 px WebP is most of an image's work in all three implementations, so the latency,
throughput and cost targets depend on it more than on anything the engine does. This module
measures it directly, in the harness process once the workers have stopped:

- ``compare``: each input's 2048 px sRGB pixels through libvips' WebP saver and through
  Pillow's, same quality and effort. The bytes match (one libwebp algorithm); the times show
  how fast each wheel's libwebp build is.
- ``tradeoff``: bytes, SSIM and CPU for WebP efforts 2..4 over a range of qualities, so that
  "what if the default effort were lower" is answered at equal quality, not at equal ``Q``.

``summary.bounds`` turns ``compare`` into the latency bound: libwebp needs every pixel before
it starts and encodes on one core, so no libvips implementation finishes an image sooner than
its decode plus that one encode.
"""

from __future__ import annotations

import io
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pyvips
from PIL import Image

from benchmarks.corpus import Input

log = logging.getLogger(__name__)

BOX = 2048  # the optimized rendition's bounding box
WEBP_QUALITY = 80
TRADEOFF_EFFORTS = (2, 3, 4)
TRADEOFF_QUALITIES = (70, 75, 80, 85, 90)
_SSIM_WINDOW = 7  # scikit-image's default: a uniform 7x7 window, sample covariance


def pixels(path: str) -> pyvips.Image:
    """The optimized rendition's pixels as every implementation encodes them: 8-bit sRGB."""
    from processor.imaging.pixels import to_srgb

    return to_srgb(pyvips.Image.thumbnail(path, BOX, height=BOX, size="down")).copy_memory()


def webp_libvips(image: pyvips.Image, quality: int, effort: int) -> bytes:
    data: bytes = image.webpsave_buffer(Q=quality, effort=effort, keep="none")
    return data


def to_pillow(image: pyvips.Image) -> Image.Image:
    mode = {3: "RGB", 4: "RGBA"}[image.bands]
    return Image.frombytes(mode, (image.width, image.height), image.write_to_memory())


def webp_pillow(image: Image.Image, quality: int, effort: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=quality, method=effort)
    return buf.getvalue()


def _timed(fn: Callable[[], bytes], reps: int) -> tuple[float, float, bytes]:
    """Median wall and CPU milliseconds over ``reps`` calls, and the last result."""
    walls, cpus = [], []
    data = b""
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        data = fn()
        walls.append((time.perf_counter() - w0) * 1e3)
        cpus.append((time.process_time() - c0) * 1e3)
    return statistics.median(walls), statistics.median(cpus), data


def compare(inputs: Sequence[Input], effort: int, reps: int = 3) -> dict[str, dict[str, Any]]:
    """Per input: libvips' and Pillow's WebP encode of the same 2048 px pixels."""
    out: dict[str, dict[str, Any]] = {}
    for inp in inputs:
        try:
            image = pixels(str(inp.path))
            pil = to_pillow(image)
        except (pyvips.Error, KeyError) as e:
            out[inp.name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:200]}
            continue
        v_ms, v_cpu, v_data = _timed(partial(webp_libvips, image, WEBP_QUALITY, effort), reps)
        p_ms, p_cpu, p_data = _timed(partial(webp_pillow, pil, WEBP_QUALITY, effort), reps)
        out[inp.name] = {
            "ok": True,
            "width": image.width,
            "height": image.height,
            "libvips_ms": v_ms,
            "libvips_cpu_ms": v_cpu,
            "pillow_ms": p_ms,
            "pillow_cpu_ms": p_cpu,
            "libvips_bytes": len(v_data),
            "pillow_bytes": len(p_data),
        }
    return out


def luma(image: pyvips.Image) -> np.ndarray:
    """Rec. 601 luma of an sRGB image (alpha flattened onto white), as float64."""
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    rgb = np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    ).astype(np.float64)
    y: np.ndarray = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return y


def ssim(x: np.ndarray, y: np.ndarray, data_range: float = 255.0) -> float:
    """Mean structural similarity (Wang et al. 2004) over every whole 7x7 window.

    The same definition as scikit-image's default (uniform window, sample covariance, edges
    cropped), written with summed-area tables so it needs nothing beyond numpy.
    """
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} and {y.shape}")
    k = _SSIM_WINDOW
    if min(x.shape) < k:
        raise ValueError(f"images smaller than the {k}x{k} window")
    n = k * k

    def mean(a: np.ndarray) -> np.ndarray:
        c = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        s: np.ndarray = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
        return s / n

    ux, uy = mean(x), mean(y)
    unbiased = n / (n - 1)
    vx = unbiased * (mean(x * x) - ux * ux)
    vy = unbiased * (mean(y * y) - uy * uy)
    vxy = unbiased * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def tradeoff(
    inputs: Sequence[Input],
    efforts: Sequence[int] = TRADEOFF_EFFORTS,
    qualities: Sequence[int] = TRADEOFF_QUALITIES,
) -> dict[str, Any]:
    """Summed bytes and CPU, mean SSIM, per (effort, quality), over ``inputs``."""
    points: dict[tuple[int, int], dict[str, float]] = {}
    used = []
    for inp in inputs:
        try:
            image = pixels(str(inp.path))
        except pyvips.Error as e:
            log.warning("trade-off: %s skipped: %s", inp.name, e)
            continue
        used.append(inp.name)
        reference = luma(image)
        for effort in efforts:
            for q in qualities:
                _, cpu, data = _timed(partial(webp_libvips, image, q, effort), 1)
                decoded = pyvips.Image.new_from_buffer(data, "")
                p = points.setdefault((effort, q), {"bytes": 0.0, "cpu_ms": 0.0, "ssim": 0.0})
                p["bytes"] += len(data)
                p["cpu_ms"] += cpu
                p["ssim"] += ssim(reference, luma(decoded))
    rows = [
        {
            "effort": e,
            "quality": q,
            "bytes": p["bytes"],
            "cpu_ms": p["cpu_ms"],
            "ssim": p["ssim"] / len(used),
        }
        for (e, q), p in sorted(points.items())
    ]
    return {"inputs": used, "rows": rows}


def at_equal_quality(
    rows: Sequence[dict[str, Any]], reference_effort: int, reference_quality: int
) -> list[dict[str, Any]]:
    """For each effort: the bytes and CPU it needs to reach the reference's SSIM.

    Bytes and CPU are interpolated linearly in SSIM between the two qualities that bracket
    the reference's SSIM; ``None`` when that SSIM is out of the effort's measured range.
    """
    ref = next(
        (r for r in rows if (r["effort"], r["quality"]) == (reference_effort, reference_quality)),
        None,
    )
    if ref is None:
        return []
    out = []
    for effort in sorted({r["effort"] for r in rows}):
        curve = sorted((r for r in rows if r["effort"] == effort), key=lambda r: r["ssim"])
        found = None
        for lo, hi in zip(curve, curve[1:], strict=False):
            if lo["ssim"] <= ref["ssim"] <= hi["ssim"] and hi["ssim"] > lo["ssim"]:
                t = (ref["ssim"] - lo["ssim"]) / (hi["ssim"] - lo["ssim"])
                found = {
                    key: lo[key] + t * (hi[key] - lo[key]) for key in ("bytes", "cpu_ms", "quality")
                }
                break
        if found is None and curve and curve[0]["ssim"] == ref["ssim"]:
            found = {key: curve[0][key] for key in ("bytes", "cpu_ms", "quality")}
        out.append(
            {
                "effort": effort,
                "ssim": ref["ssim"],
                "quality": found["quality"] if found else None,
                "bytes_ratio": found["bytes"] / ref["bytes"] if found else None,
                "cpu_ratio": found["cpu_ms"] / ref["cpu_ms"] if found else None,
            }
        )
    return out


def tradeoff_inputs(inputs: Sequence[Input], count: int) -> list[Input]:
    """Photographs, biggest first: what the effort decision is about."""
    photos = [i for i in inputs if i.kind in ("jpeg", "large")]
    return sorted(photos, key=lambda i: -i.megapixels)[:count]
