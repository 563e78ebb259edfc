"""``python -m benchmarks.resize_once [--before DIR]``: the optimized renditions of odd-sized
photos against one Lanczos3 resize of the same pixels, scored with the reference SSIMULACRA2.

Sizes where a decode used to land a pixel short and was resampled a second time (1622x2880,
2203x3001) beside one that never was (2731x2251). ``--before`` runs the same measurement with
the engine of another checkout (e.g. a ``git worktree`` of an older commit) in the same run,
so the two columns share a machine and a moment. Prints JSON: per size and format the score
and bytes, and CPU seconds per image and the whole process's peak RSS per engine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = ((1622, 2880), (2731, 2251), (2203, 3001))
PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "good"
PHOTO = PHOTO / "2569067123_aca715a2ee_o.jpg"


def measure(binary: str) -> dict[str, object]:
    import pyvips

    from processor.core.config import EngineConfig, Scoring
    from processor.imaging.engine import Engine

    source = pyvips.Image.new_from_file(str(PHOTO))
    engine = Engine(EngineConfig(scoring=Scoring(enabled=False)))  # the resizes, not scores
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for w, h in SIZES:
            small = source.width < w or source.height < h
            grown = source.thumbnail_image(max(w, h) * 2) if small else source
            crop = grown.crop(0, 0, w, h)
            path = work / f"crop-{w}x{h}.png"
            crop.pngsave(str(path))
            started = time.process_time()
            result = engine.process(path, image_id="x")
            out[f"{w}x{h} cpu_s"] = round(time.process_time() - started, 2)
            for o in result.outputs:
                if max(o.info.width, o.info.height) != 2048 or o.info.format not in (
                    "jpeg",
                    "webp",
                ):
                    continue
                ref = crop.resize(o.info.width / w, vscale=o.info.height / h, kernel="lanczos3")
                ref_file = work / "ref.png"
                ref.pngsave(str(ref_file))
                got = work / "got.png"
                pyvips.Image.new_from_buffer(o.data, "").pngsave(str(got))
                scored = subprocess.run(
                    [binary, str(ref_file), str(got)], capture_output=True, text=True, check=True
                )
                score = float(scored.stdout.split()[-1])
                out[f"{w}x{h} {o.info.format}"] = {"score": round(score, 1), "bytes": len(o.data)}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout whose engine to run as well")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--binary", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a child: only the engine of its PYTHONPATH is imported
        print(json.dumps(measure(args.binary)))
        return
    from benchmarks.calibrate import ssimulacra2

    binary = ssimulacra2()
    assert binary is not None
    here = Path(__file__).resolve().parents[1]
    runs = {}
    for name, tree in (("before", args.before), ("now", here)):
        if tree is None:
            continue
        # Each engine in a process of its own (its peak RSS, its imports), the reference
        # SSIMULACRA2 binary scoring both.
        env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--one", "--binary", binary],
            env=env,
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        )
        runs[name] = json.loads(done.stdout.splitlines()[-1])
    print(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
