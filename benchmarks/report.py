"""Write results: ``latest.md`` (tables), ``results.json`` (everything) and PNG charts."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.impls import LABELS
from benchmarks.summary import REPORT_KINDS

log = logging.getLogger(__name__)

KIND_LABELS = {
    "jpeg": "JPEG (< 10 MP)",
    "png": "PNG",
    "other": "WebP, GIF, TIFF, AVIF",
    "heic": "HEIC (HEVC, any size)",
    "large": "large (>= 10 MP)",
    "all": "whole set",
}


def _f(x: float | None, digits: int = 1, suffix: str = "") -> str:
    return "–" if x is None else f"{x:,.{digits}f}{suffix}"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def write(results: Mapping[str, Any], out: Path, charts: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "latest.md"]
    written[0].write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    chart_files = _charts(results, out) if charts else []
    written[1].write_text(markdown(results, [p.name for p in chart_files]), encoding="utf-8")
    return written + chart_files


def markdown(r: Mapping[str, Any], charts: list[str]) -> str:
    """latest.md: one small function per section, in reading order; each returns its lines
    (none when the run has no numbers for it)."""
    sections = (
        _intro,
        _targets,
        _latency,
        _cpu,
        _stages,
        _encoder_sections,
        _batch,
        _memory,
        _cold_start,
        _cost,
        _e2e,
        _failures,
        _per_input,
    )
    lines = [line for section in sections for line in section(r)]
    for name in charts:
        lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def _impls(r: Mapping[str, Any]) -> list[str]:
    return list(r.get("medians", {}))


def _intro(r: Mapping[str, Any]) -> list[str]:
    m, p = r["machine"], r["params"]
    impls = _impls(r)
    lines = [
        "# imgpipe benchmark results",
        "",
        f"Run {m['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gb']:.0f} GB), "
        f"{m['os']}; Python {m['python']}, libvips {m['libvips']} (pyvips {m['pyvips']}), "
        f"Pillow {m['pillow']}. Every measured process ran with `MALLOC_ARENA_MAX=2`.",
        "",
        f"Command: `{p['command']}`. {p['rounds']} interleaved rounds (medians), "
        f"batch with `--jobs {p['jobs']}`, {len(r['inputs'])} inputs "
        f"(corpus `{p['corpus']}` plus generated photos of "
        f"{', '.join(str(x) for x in p['large_mp']) or 'no'} MP; peak RSS also at "
        f"{', '.join(str(x) for x in p['memory_mp']) or 'no'} MP). Encoder settings, the "
        f"same for every implementation: JPEG q82, WebP q80 effort {p.get('webp_effort', 4)}, "
        "PNG level 6.",
        "",
        "Implementations: " + "; ".join(f"**{i}** = {LABELS[i]}" for i in impls) + ".",
        "",
    ]
    noise = r.get("noise", {})
    foreign = noise.get("foreign_cores")
    if foreign is not None:
        quiet = "quiet" if foreign < 0.1 else "**busy: treat the ratios with care**"
        lines += [
            f"Machine load while measuring latency: other processes used {foreign:.2f} "
            f"of {m['cores']} cores on average ({quiet}; load average "
            f"{_f(noise.get('loadavg_start'), 2)} at the start, "
            f"{_f(noise.get('loadavg_end'), 2)} at the end).",
            "",
        ]
    for impl, reason in r.get("skipped", {}).items():
        lines += [f"> {impl} skipped: {reason}", ""]
    return lines


def _targets(r: Mapping[str, Any]) -> list[str]:
    lines = ["## Target check", ""]
    lines += _table(
        ["target", "measured", "limit", "result", "what libvips itself reaches"],
        [
            [
                t["name"],
                _f(t["measured"], 2 if t["unit"] == "x" else 0, t["unit"]),
                ("≥ " if t["higher_is_better"] else "≤ ")
                + _f(t["limit"], 2 if t["unit"] == "x" else 0, t["unit"]),
                f"**{t['status']}** ({t['margin']})" if t["status"] != "n/a" else "n/a",
                f"{t['reference']:.2f}x ({t['reference_note']})"
                if t.get("reference") is not None
                else "",
            ]
            for t in r.get("targets", [])
        ],
    )
    lines += [
        "*What libvips itself reaches*: for latency, the lowest ratio any libvips "
        "implementation could reach with these renditions, its bare decode plus the one "
        "2048 px WebP encode, which cannot start before the decode ends and runs on one core "
        "(see *The WebP encoder under everything*); elsewhere, the bare pyvips floor's own "
        "ratio to Pillow. Where that is already past the limit, no engine on this libvips "
        "build meets the target at these encoder settings.",
        "",
    ]
    return lines


def _latency(r: Mapping[str, Any]) -> list[str]:
    impls, kinds = _impls(r), r.get("kinds", {})
    lines = [
        "## Latency, one image at a time (warm process, as a Lambda sees it)",
        "",
        "Mean of per-image medians, in ms per image; ratios are of the same sums, measured in "
        "the same run. Only inputs every implementation processed count.",
        "",
    ]
    header = ["input kind", "n"] + [f"{i} ms" for i in impls]
    header += [f"{a}/{b}" for a, b in _pairs(impls)] + [f"{i} img/s" for i in impls]
    rows = []
    for kind in REPORT_KINDS:
        if kind not in kinds:
            continue
        k = kinds[kind]["impls"]
        row = [KIND_LABELS[kind], str(kinds[kind]["n"])]
        row += [_f(k[i]["wall_ms"]) for i in impls]
        row += [_ratio(k[a]["wall_ms"], k[b]["wall_ms"]) for a, b in _pairs(impls)]
        row += [_f(k[i]["images_per_s"], 2) for i in impls]
        rows.append(row)
    lines += _table(header, rows)
    return lines


def _cpu(r: Mapping[str, Any]) -> list[str]:
    impls, kinds = _impls(r), r.get("kinds", {})
    lines = ["## CPU time per image (user + system, all threads)", ""]
    header = ["input kind"] + [f"{i} ms" for i in impls] + [f"{a}/{b}" for a, b in _pairs(impls)]
    rows = []
    for kind in REPORT_KINDS:
        if kind in kinds:
            k = kinds[kind]["impls"]
            rows.append(
                [KIND_LABELS[kind]]
                + [_f(k[i]["cpu_ms"]) for i in impls]
                + [_ratio(k[a]["cpu_ms"], k[b]["cpu_ms"]) for a, b in _pairs(impls)]
            )
    lines += _table(header, rows)
    return lines


def _stages(r: Mapping[str, Any]) -> list[str]:
    impls, kinds = _impls(r), r.get("kinds", {})
    lines = [
        "## Where the time goes (each implementation's own stages, ms per image)",
        "",
        "engine: read = spool + sha256, decode = header, plan, decode, resize (all renditions), "
        "encode = placeholder + every encode (concurrent). Pillow: decode (draft), resize "
        "(+ colour), encode. floor: decode = thumbnail to 2048, encode includes the thumb's "
        "resize.",
        "",
    ]
    rows = []
    for kind in REPORT_KINDS:
        if kind in kinds:
            for impl in impls:
                st = kinds[kind]["impls"][impl]["stages_ms"]
                desc = ", ".join(f"{k} {v:.1f}" for k, v in st.items() if k != "total")
                out_kb = kinds[kind]["impls"][impl]["out_kb"]
                rows.append([KIND_LABELS[kind], impl, desc, _f(out_kb, 0)])
    lines += _table(["input kind", "impl", "stages (ms)", "output KB / image"], rows)
    return lines


def _batch(r: Mapping[str, Any]) -> list[str]:
    p, bs = r["params"], r.get("batch_summary", {})
    if not bs:
        return []
    lines = [f"## Batch throughput, `--jobs {p['jobs']}` (both cores busy)", ""]
    base = bs.get("pillow", {}).get("images_per_s")
    rows = [
        [
            impl,
            str(b["jobs"]),
            str(b["images"]),
            _f(b["median_wall_s"], 2),
            _f(b["images_per_s"], 2),
            _ratio(b["images_per_s"], base),
        ]
        for impl, b in bs.items()
    ]
    lines += _table(["impl", "processes", "images", "wall s", "img/s", "vs Pillow"], rows)
    first: Mapping[str, Any] = next(iter(r.get("batch", {}).values()), {})
    foreign = first.get("foreign_cores")
    if foreign is not None:
        lines += [f"Other processes used {foreign:.2f} cores on average meanwhile.", ""]
    return lines


def _memory(r: Mapping[str, Any]) -> list[str]:
    mk = r.get("memory_by_kind", {})
    if not mk:
        return []
    lines = [
        "## Peak RSS (fresh process per input: imports, set-up and one image)",
        "",
        "Highest peak per input kind, MB:",
        "",
    ]
    mem_impls = list(r.get("memory", {}))
    above = r.get("memory_above_base_by_kind", {})
    rows = [
        [KIND_LABELS[k]]
        + [_f(v.get(i), 0) for i in mem_impls]
        + [_ratio(v.get("engine"), v.get("pillow"))]
        + [_f(above.get(k, {}).get(i), 0) for i in mem_impls]
        for k, v in mk.items()
    ]
    lines += _table(
        ["input kind"]
        + [f"{i} MB" for i in mem_impls]
        + ["engine/pillow"]
        + [f"{i} above base" for i in mem_impls],
        rows,
    )
    bases = {
        i: max(e["base_rss_mb"] for e in r["memory"][i].values() if e["ok"])
        for i in mem_impls
        if any(e["ok"] for e in r["memory"][i].values())
    }
    lines += [
        "Footprint before any image (interpreter, imports, set-up): "
        + ", ".join(f"{i} {v:.0f} MB" for i, v in bases.items())
        + ". *Above base* is the peak minus that footprint: what the image itself costs.",
        "",
    ]
    return lines + _large_inputs(r, mem_impls)


def _large_inputs(r: Mapping[str, Any], mem_impls: list[str]) -> list[str]:
    large = [i for i in r["inputs"] if i["kind"] == "large"]
    if not large:
        return []
    lines = ["Large inputs, MB (baseline after imports in brackets):", ""]
    rows = []
    for inp in large:
        row = [inp["name"], _f(inp["megapixels"], 0)]
        for impl in mem_impls:
            e = r["memory"][impl].get(inp["name"])
            row.append(
                "–"
                if not e
                else f"{e['peak_rss_mb']:.0f} ({e['base_rss_mb']:.0f})"
                if e["ok"]
                else "failed"
            )
        rows.append(row)
    return lines + _table(["input", "MP"] + [f"{i} MB" for i in mem_impls], rows)


def _cold_start(r: Mapping[str, Any]) -> list[str]:
    if not r.get("imports"):
        return []
    lines = [
        "## Cold start: handler import in a fresh interpreter",
        "",
        "Median over fresh interpreters with a Lambda-like environment (LAMBDA_TASK_ROOT "
        "set, so Powertools' tracer is live). *First-event set-up* is what the handler "
        "defers to its first invocation, timed in the same interpreter right after the "
        "import: a cold start pays both.",
        "",
    ]
    rows = []
    for imp in r["imports"]:
        if imp["ok"]:
            top = ", ".join(f"{t['package']} {t['ms']:.0f}" for t in imp["top"][:6])
            steps = ", ".join(
                f"`{k.split(':')[1]}` {v:.0f}"
                for k, v in imp.get("init_steps_median_ms", {}).items()
            )
            init = (
                f"{imp['init_median_ms']:.0f} ({steps})"
                if not imp.get("init_error")
                else f"failed: {imp['init_error']}"
            )
            rows.append([f"`{imp['module']}`", _f(imp["median_ms"], 0), init, top])
        else:
            rows.append([f"`{imp['module']}`", "failed", "–", imp["error"]])
    lines += _table(
        ["module", "import ms", "first-event set-up ms", "slowest packages (self ms)"], rows
    )
    return lines


def _cost(r: Mapping[str, Any]) -> list[str]:
    m, p, c = r["machine"], r["params"], r.get("cost", {})
    if not c:
        return []
    lines = [
        "## Lambda cost per 1,000 images",
        "",
        f"Modelled from each image's measured wall and CPU time: at memory M a function "
        f"gets M/1769 vCPU (at most {m['cores']}), so an image takes max(wall, CPU / share); "
        f"billed per ms, one image per invocation (${p['price_per_million_requests']} per "
        f"million requests), arm64 ${p['price_arm64_gb_s']}/GB-s, x86_64 "
        f"${p['price_x86_64_gb_s']}/GB-s; a memory size must hold 1.1x the peak RSS. "
        f"Same durations assumed on both architectures.",
        "",
    ]
    rows = []
    for impl, e in c.items():
        for label, est in (("configured", e["configured"]), ("best", e["best"])):
            if est is None:
                continue
            fits = "" if est["fits"] else " (too small)"
            rows.append(
                [
                    impl,
                    f"{label}: {est['memory_mb']} MB{fits}",
                    _f(est["ms_per_image"], 0),
                    _f(est["gb_s_per_1000"], 2),
                    f"${est['usd_per_1000']['arm64']:.4f}",
                    f"${est['usd_per_1000']['x86_64']:.4f}",
                ]
            )
    lines += _table(
        ["impl", "memory", "billed ms/image", "GB-s/1000", "arm64 $/1000", "x86_64 $/1000"],
        rows,
    )
    return lines


def _e2e(r: Mapping[str, Any]) -> list[str]:
    e2e = r.get("e2e", {})
    lines = ["## End to end on the local stack", ""]
    if e2e.get("skipped"):
        lines += [f"Skipped: {e2e['skipped']}", ""]
    else:
        lines += [
            f"`imgpipe local` (its default worker concurrency), {e2e.get('images')} distinct "
            f"corpus images uploaded straight to S3 `raw/`: {e2e.get('done')} done, "
            f"{e2e.get('failed')} failed, {e2e.get('unfinished')} unfinished after "
            f"{_f(e2e.get('wall_s'), 2)} s from the first upload (uploads took "
            f"{_f(e2e.get('upload_s'), 2)} s): {_f(e2e.get('images_per_s'), 2)} images/s. "
            "The split is the processor's own per-stage timings, stored on each record "
            "(medians; stages overlap nothing but the encodes, which run concurrently).",
            "",
        ]
        if e2e.get("stages_ms"):
            lines += _table(
                ["stage", "ms per image (median)"],
                [[k, _f(v)] for k, v in e2e["stages_ms"].items()],
            )
        lines += _overlap(e2e.get("overlap") or {})
    return lines


def _overlap(o: Mapping[str, Any]) -> list[str]:
    """The handler's images in flight (IMGPIPE_IMAGES_AT_ONCE), one at a time against two."""
    lines = ["### Images in flight: two at once against one at a time", ""]
    if not o or o.get("skipped"):
        return [*lines, f"Skipped: {o.get('skipped', 'not measured')}", ""]
    one, two = o.get("wall_s_one_at_a_time", []), o.get("wall_s_two_at_once", [])
    return [
        *lines,
        f"One processor execution environment (2048 MB, `--concurrency 1`), the same "
        f"{o.get('images')} uploads ({o.get('photos')} of the photo set, the rest from the "
        f"corpus), {o.get('rounds')} rounds in alternating "
        f"order: batch wall time {', '.join(_f(w, 2) for w in two)} s with two images in "
        f"flight against {', '.join(_f(w, 2) for w in one)} s one at a time: "
        f"**{_f(o.get('ratio'), 2)}x** (below 1: overlapping pays).",
        "",
    ]


def _failures(r: Mapping[str, Any]) -> list[str]:
    failures = [
        (impl, name, v["error"])
        for impl, per in r.get("medians", {}).items()
        for name, v in per.items()
        if not v["ok"]
    ]
    if not failures:
        return []
    lines = ["## Inputs an implementation could not process (left out of every ratio)", ""]
    return lines + _table(
        ["impl", "input", "error"], [[a, b, c_.replace("|", "/")] for a, b, c_ in failures]
    )


def _per_input(r: Mapping[str, Any]) -> list[str]:
    impls = _impls(r)
    lines = ["<details><summary>Per input: median wall ms (CPU ms)</summary>", ""]
    rows = []
    for inp in r["inputs"]:
        row = [inp["name"], inp["kind"], _f(inp["megapixels"], 1)]
        for impl in impls:
            v = r["medians"][impl].get(inp["name"])
            row.append("–" if not v or not v["ok"] else f"{v['wall_ms']:.1f} ({v['cpu_ms']:.1f})")
        rows.append(row)
    return lines + _table(["input", "kind", "MP"] + impls, rows) + ["</details>", ""]


def _photos(n: int) -> str:
    return f"{n} photo" if n == 1 else f"{n} photos"


def _encoder_sections(r: Mapping[str, Any]) -> list[str]:
    bounds, trade = r.get("bounds", {}), r.get("tradeoff", {})
    if not bounds and not trade:
        return []
    effort = r["params"].get("webp_effort", 4)
    lines = [
        "## The WebP encoder under everything",
        "",
        f"Each input's 2048 px sRGB pixels, encoded to WebP q80 effort {effort} by libvips "
        "(`webpsave`) and by Pillow, one at a time in one process; both wrap libwebp, so the "
        "bytes match and the times compare the two wheels' libwebp builds; the engine encodes "
        "with the faster one (`processor/imaging/webp.py`). The latency bound is the floor's "
        "decode plus "
        "that encoder's encode: libwebp takes the whole picture before it starts and encodes "
        "on one core, so no libvips implementation finishes sooner.",
        "",
    ]
    if bounds:
        rows = [
            [
                KIND_LABELS[kind],
                str(b["n"]),
                _f(b["libvips_webp_ms"]),
                _f(b["pillow_webp_ms"]),
                _ratio(b["libvips_webp_ms"], b["pillow_webp_ms"]),
                f"{b['identical_bytes']} of {b['n']}",
                _f(b["bound_ms"]),
                _f(b["engine_wall_ms"]),
                _f(b["pillow_wall_ms"]),
                _f(b["bound_ratio"], 2, "x"),
            ]
            for kind, b in bounds.items()
        ]
        lines += _table(
            [
                "input kind",
                "n",
                "libvips WebP ms",
                "Pillow WebP ms",
                "libvips/Pillow",
                "same bytes",
                "bound ms",
                "engine ms",
                "Pillow ms",
                "bound/Pillow",
            ],
            rows,
        )
    return lines + _webp_effort(trade, effort)


def _webp_effort(trade: Mapping[str, Any], effort: int) -> list[str]:
    if not trade.get("rows"):
        return []
    lines = [
        f"### WebP effort against bytes at equal quality ({_photos(len(trade['inputs']))})",
        "",
        "Summed over " + ", ".join(f"`{n}`" for n in trade["inputs"]) + ": encoder CPU, "
        "bytes and mean SSIM (luma, 7x7 windows, as scikit-image computes it) per effort "
        "and quality. The second table reads each effort's curve at the SSIM of the "
        f"default (effort {effort}, q80): the quality it needs there, and its bytes and CPU "
        "relative to the default's.",
        "",
    ]
    lines += _table(
        ["effort", "q", "KB", "SSIM", "CPU ms"],
        [
            [
                str(x["effort"]),
                str(x["quality"]),
                _f(x["bytes"] / 1024, 0),
                f"{x['ssim']:.4f}",
                _f(x["cpu_ms"], 0),
            ]
            for x in trade["rows"]
        ],
    )
    eq = trade.get("equal_quality", [])
    if eq:
        lines += _table(
            ["effort", "q for equal SSIM", "bytes vs default", "CPU vs default"],
            [
                [
                    str(x["effort"]),
                    _f(x["quality"], 1),
                    _f(x["bytes_ratio"], 3, "x"),
                    _f(x["cpu_ratio"], 2, "x"),
                ]
                for x in eq
            ],
        )
    return lines


def _pairs(impls: list[str]) -> list[tuple[str, str]]:
    pairs = [("engine", "pillow"), ("engine", "floor"), ("floor", "pillow")]
    return [(a, b) for a, b in pairs if a in impls and b in impls]


def _charts(r: Mapping[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib missing: no charts")
        return []
    files: list[Path] = []
    kinds = r.get("kinds", {})
    impls = list(r.get("medians", {}))
    colours = {"engine": "#2a9d8f", "pillow": "#e76f51", "floor": "#8d99ae"}

    def bars(
        path: Path, title: str, ylabel: str, groups: list[str], values: dict[str, list[float]]
    ) -> None:
        fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
        width = 0.8 / max(1, len(values))
        for n, (impl, vals) in enumerate(values.items()):
            xs = [g + n * width for g in range(len(groups))]
            ax.bar(xs, vals, width, label=impl, color=colours.get(impl))
        ax.set_xticks([g + width * (len(values) - 1) / 2 for g in range(len(groups))], groups)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        files.append(path)

    ks = [k for k in REPORT_KINDS if k in kinds]
    if ks:
        for metric, name, title in (
            ("wall_ms", "latency.png", "Latency per image, one at a time (ms, lower is better)"),
            ("cpu_ms", "cpu.png", "CPU time per image (ms, lower is better)"),
        ):
            bars(
                out / name,
                title,
                "ms per image",
                ks,
                {i: [kinds[k]["impls"][i][metric] for k in ks] for i in impls},
            )
    mk = r.get("memory_by_kind", {})
    if mk:
        mem_impls = list(r.get("memory", {}))
        bars(
            out / "memory.png",
            "Peak RSS, highest per input kind (MB, lower is better)",
            "MB",
            list(mk),
            {i: [mk[k].get(i, 0.0) for k in mk] for i in mem_impls},
        )
    c = r.get("cost", {})
    if c:
        fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
        for impl, e in c.items():
            pts = [(p["memory_mb"], p["usd_per_1000"]["arm64"]) for p in e["curve"] if p["fits"]]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=impl, color=colours.get(impl))
        ax.axvline(r["params"]["memory_mb"], color="k", ls=":", label="configured memory")
        ax.set_xlabel("Lambda memory (MB)")
        ax.set_ylabel("USD per 1,000 images (arm64)")
        ax.set_title("Modelled Lambda cost by memory size (lower is better)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / "cost.png"
        fig.savefig(path)
        plt.close(fig)
        files.append(path)
    return files
