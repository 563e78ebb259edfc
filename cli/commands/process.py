"""`imgpipe process`: renditions and metadata for local files, no AWS involved."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cli.commands.progress import Progress


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "process",
        help="make renditions of local files and print their metadata as JSON Lines",
        description="Process files and folders (recursively) into renditions under --out. "
        "Prints one JSON object per input; exit 0 when all are done, 1 when any failed.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument("--out", default="out", help="output folder (default: ./out)")
    p.add_argument("--config", help="rendition config JSON file (default: built-in)")
    p.add_argument("--jobs", type=int, default=1, help="images in parallel (default: 1)")
    p.set_defaults(func=run)


def iter_inputs(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def run(args: argparse.Namespace) -> int:
    from processor.core.config import EngineConfig
    from processor.core.errors import PipelineError
    from processor.core.keys import image_id
    from processor.imaging.engine import Engine

    if args.jobs < 1:
        print("imgpipe process: --jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        config = EngineConfig.from_file(args.config) if args.config else EngineConfig()
    except (OSError, ValueError) as e:
        print(f"imgpipe process: bad --config: {e}", file=sys.stderr)
        return 2
    inputs = list(iter_inputs(args.paths))
    missing = [p for p in inputs if not p.exists()]
    if missing:
        print(f"imgpipe process: no such file: {missing[0]}", file=sys.stderr)
        return 2

    engine = Engine(config)
    out_root = Path(args.out)

    def one(path: Path) -> dict[str, Any]:
        iid = image_id("local", str(path.resolve()))
        try:
            result = engine.process(path, image_id=iid, source_name=path.name)
        except PipelineError as e:
            return {"source": str(path), "status": "failed", "id": iid, "error": e.to_dict()}
        except OSError as e:
            return {
                "source": str(path),
                "status": "failed",
                "id": iid,
                "error": {"code": "unreadable", "message": f"cannot read the file: {e}"},
            }
        for output in result.outputs:
            target = out_root / output.info.key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(output.data)
        return {
            "source": str(path),
            "status": "done",
            "id": iid,
            **result.facts.model_dump(mode="json"),
            "config_version": result.config_version,
            "renditions": [o.info.model_dump(mode="json") for o in result.outputs],
            "processing_ms": result.timings["total"],
        }

    failed = 0
    progress = Progress(len(inputs), label="process")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for record in pool.map(one, inputs):
            failed += record["status"] != "done"
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
            progress.advance()
    progress.close()
    return 1 if failed else 0
