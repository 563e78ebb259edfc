"""From raw samples to medians, per-kind sums, ratios, cost and the target check. Pure."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks import cost
from benchmarks.corpus import KINDS, Input

REPORT_KINDS = (*KINDS, "all")
LARGE_PHOTO_100MP = "photo-100mp.jpg"
IMPL_NAMES = ("engine", "pillow", "floor")


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def per_input(samples: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Medians per input for one implementation."""
    out: dict[str, dict[str, Any]] = {}
    for name, s in samples.items():
        stages: dict[str, float] = {}
        for key in {k for st in s["stages"] for k in st}:
            m = _median([st[key] for st in s["stages"] if key in st])
            if m is not None:
                stages[key] = m
        out[name] = {
            "ok": s["error"] is None and bool(s["wall_ms"]),
            "error": s["error"],
            "wall_ms": _median(s["wall_ms"]),
            "cpu_ms": _median(s["cpu_ms"]),
            "stages_ms": stages,
            "out_bytes": sum(r["bytes"] for r in s.get("renditions", [])),
            "renditions": s.get("renditions", []),
        }
    return out


def common_inputs(inputs: Sequence[Input], medians: Mapping[str, Mapping[str, Any]]) -> list[Input]:
    """Inputs every implementation processed: ratios compare like with like."""
    return [i for i in inputs if all(m[i.name]["ok"] for m in medians.values())]


def in_kind(inputs: Sequence[Input], kind: str) -> list[Input]:
    return list(inputs) if kind == "all" else [i for i in inputs if i.kind == kind]


def by_kind(
    inputs: Sequence[Input], medians: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per kind and implementation: mean ms per image (wall, CPU), images/s, stage split."""
    common = common_inputs(inputs, medians)
    out: dict[str, dict[str, Any]] = {}
    for kind in REPORT_KINDS:
        chosen = in_kind(common, kind)
        if not chosen:
            continue
        row: dict[str, Any] = {"n": len(chosen), "inputs": [i.name for i in chosen], "impls": {}}
        for impl, m in medians.items():
            wall = sum(m[i.name]["wall_ms"] for i in chosen)
            cpu = sum(m[i.name]["cpu_ms"] for i in chosen)
            stages: dict[str, float] = {}
            for i in chosen:
                for k, v in m[i.name]["stages_ms"].items():
                    stages[k] = stages.get(k, 0.0) + v / len(chosen)
            row["impls"][impl] = {
                "wall_ms": wall / len(chosen),
                "cpu_ms": cpu / len(chosen),
                "images_per_s": len(chosen) / (wall / 1e3) if wall else None,
                "stages_ms": stages,
                "out_kb": sum(m[i.name]["out_bytes"] for i in chosen) / len(chosen) / 1024,
            }
        out[kind] = row
    return out


def ratio(kinds: Mapping[str, Any], kind: str, metric: str, a: str, b: str) -> float | None:
    impls = kinds.get(kind, {}).get("impls", {})
    if a not in impls or b not in impls or not impls[b][metric]:
        return None
    value: float = impls[a][metric] / impls[b][metric]
    return value


def batch_summary(batch: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for impl, b in batch.items():
        wall = _median(b["wall_s"])
        out[impl] = {
            "jobs": b["jobs"],
            "median_wall_s": wall,
            "images": b["images"],
            "errors": b["errors"],
            "images_per_s": b["images"] / wall if wall else None,
        }
    return out


# The implementations every target compares; others (the floor) are references only.
COMPARED = ("engine", "pillow")


def memory_by_kind(
    inputs: Sequence[Input], mem: Mapping[str, Mapping[str, Any]], above_base: bool = False
) -> dict[str, dict[str, float]]:
    """Per kind, the highest peak RSS of each implementation (what its Lambda must hold),
    over the inputs the engine and Pillow both processed (the pair the targets compare); an
    implementation that failed one of them (the bare floor cannot decode HEVC HEIC) is left
    out of that kind. With ``above_base``, the highest peak above the process's footprint
    before the image (imports and set-up left out)."""
    compared = [m for impl, m in mem.items() if impl in COMPARED] or list(mem.values())
    ok = [i for i in inputs if all(m.get(i.name, {}).get("ok") for m in compared)]

    def value(e: Mapping[str, Any]) -> float:
        peak: float = e["peak_rss_mb"]
        return peak - e["base_rss_mb"] if above_base else peak

    out: dict[str, dict[str, float]] = {}
    for kind in REPORT_KINDS:
        chosen = in_kind(ok, kind)
        if chosen:
            out[kind] = {
                impl: max(value(m[i.name]) for i in chosen)
                for impl, m in mem.items()
                if all(m.get(i.name, {}).get("ok") for i in chosen)
            }
    return out


def costs(
    inputs: Sequence[Input],
    medians: Mapping[str, Mapping[str, Any]],
    mem: Mapping[str, Mapping[str, Any]],
    memory_mb: int,
    prices: cost.Prices,
    cores: int,
) -> dict[str, dict[str, Any]]:
    """Per implementation: cost at the configured memory and at its own cheapest size."""
    common = common_inputs(inputs, medians)
    out: dict[str, dict[str, Any]] = {}
    for impl, m in medians.items():
        images = [(m[i.name]["wall_ms"], m[i.name]["cpu_ms"]) for i in common]
        peaks = [mem[impl][i.name]["peak_rss_mb"] for i in common if i.name in mem.get(impl, {})]
        peak = max(peaks) if peaks else 0.0
        if not images:
            continue
        configured = cost.estimate(images, memory_mb, peak, prices, cores)
        try:
            best = cost.best(images, peak, prices, cores).to_json()
        except ValueError:
            best = None
        curve = [
            cost.estimate(images, size, peak, prices, cores).to_json()
            for size in cost.memory_sizes(128)
        ]
        out[impl] = {
            "peak_rss_mb": peak,
            "configured": configured.to_json(),
            "best": best,
            "curve": curve,
        }
    return out


def engine_webp_encoder() -> str:
    """Which libwebp the engine encodes WebP with (processor/imaging/webp.py): "pillow" or
    "libvips"."""
    from processor.imaging import webp

    return "pillow" if webp.available(3) else "libvips"


def bounds(
    inputs: Sequence[Input],
    medians: Mapping[str, Mapping[str, Any]],
    webp: Mapping[str, Mapping[str, Any]],
    encoder: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per kind: the WebP encoder alone (libvips against Pillow, same pixels) and the latency
    bound of any libvips implementation: the floor's decode plus the 2048 px WebP encode by
    the encoder the engine uses (libwebp starts only once every pixel is decoded, and runs on
    one core)."""
    if "floor" not in medians or "pillow" not in medians:
        return {}
    encoder = encoder or engine_webp_encoder()
    chosen = [i for i in common_inputs(inputs, medians) if webp.get(i.name, {}).get("ok")]
    out: dict[str, dict[str, Any]] = {}
    for kind in REPORT_KINDS:
        rows = in_kind(chosen, kind)
        if not rows:
            continue
        w = [webp[i.name] for i in rows]
        bound = sum(
            medians["floor"][i.name]["stages_ms"].get("decode", 0.0) + webp[i.name][f"{encoder}_ms"]
            for i in rows
        )
        pillow = sum(medians["pillow"][i.name]["wall_ms"] for i in rows)
        engine = (
            sum(medians["engine"][i.name]["wall_ms"] for i in rows) if "engine" in medians else None
        )
        out[kind] = {
            "n": len(rows),
            "encoder": encoder,
            "libvips_webp_ms": sum(e["libvips_ms"] for e in w) / len(rows),
            "pillow_webp_ms": sum(e["pillow_ms"] for e in w) / len(rows),
            "identical_bytes": sum(e["libvips_bytes"] == e["pillow_bytes"] for e in w),
            "bound_ms": bound / len(rows),
            "pillow_wall_ms": pillow / len(rows),
            "engine_wall_ms": engine / len(rows) if engine is not None else None,
            "bound_ratio": bound / pillow if pillow else None,
            "engine_bound_ratio": engine / bound if engine is not None and bound else None,
        }
    return out


def photos(
    inputs: Sequence[Input], medians: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Latency of the photo set (corpus camera photos, camera and wallpaper sizes), engine
    against Pillow: JPEG photos, and all of them."""
    chosen = [i for i in common_inputs(inputs, medians) if i.photo]
    out: dict[str, dict[str, Any]] = {}
    for name, rows in (("jpeg", [i for i in chosen if i.format == "jpeg"]), ("all", chosen)):
        if not rows or "engine" not in medians or "pillow" not in medians:
            continue
        engine = sum(medians["engine"][i.name]["wall_ms"] for i in rows)
        pillow = sum(medians["pillow"][i.name]["wall_ms"] for i in rows)
        out[name] = {
            "n": len(rows),
            "inputs": [i.name for i in rows],
            "engine_ms": engine / len(rows),
            "pillow_ms": pillow / len(rows),
            "ratio": engine / pillow if pillow else None,
        }
    return out


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None
    limit: float
    higher_is_better: bool = False
    unit: str = "x"
    # What libvips itself reaches on the same measure, when that says whether the limit can
    # be met at all: the latency bound, or the bare pyvips floor's own ratio.
    reference: float | None = None
    reference_note: str = ""

    @property
    def status(self) -> str:
        if self.measured is None:
            return "n/a"
        ok = self.measured >= self.limit if self.higher_is_better else self.measured <= self.limit
        return "PASS" if ok else "MISS"

    @property
    def margin(self) -> str:
        """How far from the limit, as a share of the limit (positive: the wrong side)."""
        if self.measured is None:
            return "not measured"
        off = self.limit - self.measured if self.higher_is_better else self.measured - self.limit
        pct = off / self.limit * 100
        side = ("short" if self.higher_is_better else "over") if off > 0 else "to spare"
        return f"{abs(pct):.0f}% {side}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(status=self.status, margin=self.margin)
        return d


def targets(results: Mapping[str, Any]) -> list[Target]:
    """The speed targets, each a ratio measured in this one run."""
    kinds = results.get("kinds", {})
    bound = results.get("bounds", {})
    out = [
        Target(
            "CPU per image engine/Pillow, all",
            ratio(kinds, "all", "cpu_ms", "engine", "pillow"),
            0.92,
            reference=ratio(kinds, "all", "cpu_ms", "floor", "pillow"),
            reference_note="floor/Pillow",
        ),
        Target(
            "CPU per image engine/Pillow, jpeg",
            ratio(kinds, "jpeg", "cpu_ms", "engine", "pillow"),
            0.95,
            reference=ratio(kinds, "jpeg", "cpu_ms", "floor", "pillow"),
            reference_note="floor/Pillow",
        ),
    ]
    b = results.get("batch_summary", {})

    def per_pillow(impl: str) -> float | None:
        mine, theirs = b.get(impl, {}).get("images_per_s"), b.get("pillow", {}).get("images_per_s")
        return mine / theirs if mine and theirs else None

    out.append(
        Target(
            "--jobs 2 throughput engine/Pillow",
            per_pillow("engine"),
            1.08,
            higher_is_better=True,
            reference=per_pillow("floor"),
            reference_note="floor/Pillow",
        )
    )
    out.append(
        Target(
            "latency engine/bound, all",
            bound.get("all", {}).get("engine_bound_ratio"),
            1.05,
            reference=bound.get("all", {}).get("bound_ratio"),
            reference_note="bound/Pillow (decode + the largest encode, the engine's encoder)",
        )
    )
    mem = results.get("memory_by_kind", {})
    for kind in KINDS:
        m = mem.get(kind, {})
        out.append(
            Target(
                f"peak RSS engine/Pillow, {kind}",
                m["engine"] / m["pillow"] if "engine" in m and "pillow" in m else None,
                1.0,
                reference=m["floor"] / m["pillow"] if "floor" in m and "pillow" in m else None,
                reference_note="floor/Pillow",
            )
        )
    memory = results.get("memory", {})
    at100 = {impl: memory.get(impl, {}).get(LARGE_PHOTO_100MP, {}) for impl in IMPL_NAMES}

    def rss100(impl: str) -> float | None:
        m = at100[impl]
        return float(m["peak_rss_mb"]) if m.get("ok") else None

    e100, p100, f100 = rss100("engine"), rss100("pillow"), rss100("floor")
    out.append(
        Target(
            "peak RSS engine/Pillow, 100 MP JPEG, whole process",
            e100 / p100 if e100 and p100 else None,
            1.0,
            reference=f100 / p100 if f100 and p100 else None,
            reference_note="floor/Pillow",
        )
    )
    limits = {"processor.entrypoints.handler": 400.0, "api.handler": 300.0}
    for imp in results.get("imports", []):
        out.append(
            Target(
                f"import {imp['module']}",
                imp.get("median_ms"),
                limits.get(imp["module"], 400.0),
                unit="ms",
            )
        )
    c = results.get("cost", {})

    def cost_ratio(impl: str, size: str, arch: str) -> float | None:
        mine, theirs = c.get(impl, {}).get(size), c.get("pillow", {}).get("best")
        if not mine or not theirs:
            return None
        value: float = mine["usd_per_1000"][arch] / theirs["usd_per_1000"][arch]
        return value

    for arch in ("arm64", "x86_64"):
        out.append(
            Target(
                f"cost/1000 engine (configured) / Pillow (best), {arch}",
                cost_ratio("engine", "configured", arch),
                0.90,
                reference=cost_ratio("floor", "best", arch),
                reference_note="floor (best)/Pillow",
            )
        )
    ph = results.get("photos", {})
    for name, limit in (("jpeg", 0.80), ("all", 0.52)):
        out.append(
            Target(
                f"latency engine/Pillow, photos ({name})",
                ph.get(name, {}).get("ratio"),
                limit,
            )
        )
    return out
