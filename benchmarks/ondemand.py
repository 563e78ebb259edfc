"""``python -m benchmarks.ondemand``: what the first request for a size costs, in one run.

Three ways to answer a CDN request for a JPEG of a photo at a width outside the eager ladder,
each measured as the time until the answer's first byte is ready at the CDN's origin:

- **stored**: the size is a stored rendition; S3 (moto's server over HTTP, on this machine)
  answers its GET (time to the first byte of the body).
- **made on demand**: the miss this project makes once (processor/service/ondemand.py): the
  record read, the claim, the best stored source read, the engine, the PUT and the listing,
  against the same S3 and DynamoDB; then it is stored.
- **DIT's path**: AWS's Dynamic Image Transformation makes every miss from the original:
  the original's GET from the same S3, then sharp's resize and encode
  (benchmarks/sharp/resize.js, npm's prebuilt sharp, pinned in benchmarks/sharp/package.json
  and installed there when missing), on every miss, forever.

Each is the median of ``--rounds`` (a fresh image id per round, so every miss is one). The
result is ratios to the stored GET, measured together; the milliseconds are this machine's and
only give the scale. Writes benchmarks/results/ondemand.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.corpus import DEFAULT_CORPUS
from benchmarks.motion import SHARP, ensure_sharp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "ondemand.md"
GOOD = DEFAULT_CORPUS.resolve()
PHOTOS = ("2569067123_aca715a2ee_o.jpg", "flowers.jpeg", "Landscape_1.jpg")
WIDTHS = (480, 768, 1280)
BUCKET, TABLE = "imgpipe-bench-ondemand", "imgpipe-bench-ondemand"


def sharp_ms(files: list[Path], rounds: int) -> tuple[dict[tuple[str, int], float], str]:
    ensure_sharp()
    job = {"files": [str(f) for f in files], "widths": WIDTHS, "quality": 82, "rounds": rounds}
    done = subprocess.run(
        ["node", str(SHARP / "resize.js")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
        cwd=SHARP,
    )
    out: dict[tuple[str, int], float] = {}
    version = ""
    for line in done.stdout.splitlines():
        row = json.loads(line)
        version = row["version"]
        out[(Path(row["file"]).name, int(row["width"]))] = float(row["wall_ms"])
    return out, version


class TimedEngine:
    """The engine, with the wall time of its last ``render`` kept (the rest of a miss is
    reads and writes)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last_ms = 0.0

    def render(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.inner.render(*args, **kwargs)
        finally:
            self.last_ms = (time.perf_counter() - started) * 1000


class World:
    """moto's server over HTTP with the template's table, and the photos processed by the
    engine as the processor leaves them: original in raw/, eager renditions in public/,
    a done record."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "testing")
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def __enter__(self) -> World:
        from infra.template import table_definition
        from processor.aws.clients import aws_client
        from processor.aws.dynamo import DynamoImageRepository
        from processor.entrypoints.ondemand import build
        from processor.entrypoints.settings import ProcessorSettings

        self.s3 = aws_client("s3", region="us-east-1", endpoint_url=self.endpoint)
        dynamodb = aws_client("dynamodb", region="us-east-1", endpoint_url=self.endpoint)
        self.s3.create_bucket(Bucket=BUCKET)
        dynamodb.create_table(TableName=TABLE, **table_definition())
        self.repo = DynamoImageRepository(dynamodb, TABLE)
        settings = ProcessorSettings.model_validate(
            {"bucket": BUCKET, "table": TABLE, "endpoint_url": self.endpoint}
        )
        self.ondemand = build(settings)
        self.engine = TimedEngine(self.ondemand.engine)
        self.ondemand.engine = self.engine
        self.settings = settings
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def upload(self, photo: Path, round_: int) -> tuple[str, str]:
        """The photo processed under a fresh id: (image id, content version)."""
        from processor.core.keys import image_id
        from processor.core.ports import IMMUTABLE
        from processor.core.record import ImageRecord
        from processor.imaging.engine import Engine

        key = f"raw/round-{round_}/{photo.name}"
        iid = image_id(BUCKET, key)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=photo.read_bytes())
        engine = Engine(self.settings.engine_config)
        result = engine.process(photo, image_id=iid, versioned=True)
        for out in result.outputs:
            self.s3.put_object(
                Bucket=BUCKET,
                Key=f"public/{out.info.key}",
                Body=out.data,
                ContentType=out.info.content_type,
                CacheControl=IMMUTABLE,
            )
        now = "2026-01-01T00:00:00Z"
        record = ImageRecord.first_sight(image_id=iid, bucket=BUCKET, source_key=key, now=now).done(
            now=now,
            sequencer="01",
            config_version=result.config_version,
            content_version=result.content_version or "",
            facts=result.facts,
            renditions=[o.info for o in result.outputs],
            processing_ms=0.0,
            timings={},
        )
        self.repo.save(record)
        return iid, result.content_version or ""

    def first_byte_ms(self, key: str) -> float:
        started = time.perf_counter()
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        body.read(1)
        elapsed = (time.perf_counter() - started) * 1000
        body.read()
        return elapsed

    def original_ms(self, key: str) -> float:
        started = time.perf_counter()
        self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return (time.perf_counter() - started) * 1000


def measure(rounds: int) -> dict[str, Any]:
    photos = [GOOD / name for name in PHOTOS if (GOOD / name).exists()]
    made: dict[tuple[str, int], list[float]] = {}
    stored: dict[tuple[str, int], list[float]] = {}
    originals: dict[str, list[float]] = {}
    engine: dict[tuple[str, int], list[float]] = {}
    with World() as world:
        for round_ in range(rounds):
            for photo in photos:
                iid, version = world.upload(photo, round_)
                raw = f"raw/round-{round_}/{photo.name}"
                originals.setdefault(photo.name, []).append(world.original_ms(raw))
                for width in WIDTHS:
                    path = f"sizes/{iid}-{version}-{width}w.jpg"
                    started = time.perf_counter()
                    served = world.ondemand.serve(path)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert served.made, path
                    made.setdefault((photo.name, width), []).append(elapsed)
                    engine.setdefault((photo.name, width), []).append(world.engine.last_ms)
                    # the same size, now stored: what every later request costs the origin
                    stored.setdefault((photo.name, width), []).append(
                        world.first_byte_ms(f"public/{path}")
                    )
    sharp, version = sharp_ms(photos, rounds)
    rows = []
    for (name, width), times in made.items():
        dit = statistics.median(originals[name]) + sharp[(name, width)]
        rows.append(
            {
                "photo": name,
                "width": width,
                "stored_ms": statistics.median(stored[(name, width)]),
                "made_ms": statistics.median(times),
                "engine_ms": statistics.median(engine[(name, width)]),
                "sharp_ms": sharp[(name, width)],
                "dit_ms": dit,
            }
        )
    return {"rows": rows, "sharp": version, "rounds": rounds}


def render(found: dict[str, Any]) -> list[str]:
    rows = found["rows"]
    lines = [
        "# Sizes on demand: the first request, against a stored rendition and DIT's path",
        "",
        f"`python -m benchmarks.ondemand --rounds {found['rounds']}`; sharp {found['sharp']} "
        "(npm's prebuilt); JPEG q82; moto's S3 and DynamoDB over HTTP on this machine. Ratios "
        "are to the stored rendition's GET in the same run; milliseconds only give the scale.",
        "",
        "| photo | width | made on demand / stored | DIT's path / stored "
        "| made on demand / DIT's path | engine / sharp | stored ms | made ms (engine) "
        "| DIT ms (sharp) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['photo']} | {r['width']} | {r['made_ms'] / r['stored_ms']:.1f} "
            f"| {r['dit_ms'] / r['stored_ms']:.1f} | {r['made_ms'] / r['dit_ms']:.2f} "
            f"| {r['engine_ms'] / r['sharp_ms']:.2f} | {r['stored_ms']:.1f} "
            f"| {r['made_ms']:.1f} ({r['engine_ms']:.1f}) | {r['dit_ms']:.1f} "
            f"({r['sharp_ms']:.1f}) |"
        )
    made = statistics.median(r["made_ms"] / r["dit_ms"] for r in rows)
    pixels = statistics.median(r["engine_ms"] / r["sharp_ms"] for r in rows)
    lines += [
        "",
        f"Median over every photo and width: a miss made on demand takes {made:.2f} times "
        f"DIT's per-miss time (its engine part {pixels:.2f} times sharp's), once; the rest is "
        "its reads and writes: the record, the claim, the source, the PUT and the listing, "
        "each a round trip to moto here. Every later request is the stored GET, where DIT "
        "pays its whole path again on each CDN miss (an edge's eviction, another edge, "
        "another region).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.ondemand", description=__doc__.splitlines()[0]
    )
    p.add_argument("--rounds", type=int, default=3, help="fresh images per photo (median)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    lines = render(measure(args.rounds))
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
