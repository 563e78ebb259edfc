"""`imgpipe backfill` against the embedded AWS (moto's server over HTTP), the processor's
handler draining the queue as Lambda's event source mapping would.

GIVEN existing objects across prefixes and buckets (duplicates, non-images, unicode keys, a
folder marker), WHEN they are backfilled, some deleted after being queued, THEN each object
that survives has exactly one record, a second backfill makes nothing, an interrupted feed
resumes without sending anything twice, the pace holds, inventories in CSV and Parquet are
read, and the dry run counts what is there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from processor.core.keys import image_id
from processor.entrypoints.handler import lambda_handler
from tests.cli import backfill_world
from tests.cli.backfill_world import World, tiny_image
from tests.lambda_runtime import drain

# The fixtures (a module's embedded AWS, a pipeline on it per test).
shared_endpoint = backfill_world.shared_endpoint
world = backfill_world.world

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("backfill")]


def keys_of(messages: list[dict]) -> list[tuple[str, str]]:
    return [(json.loads(m["Body"])["bucket"], json.loads(m["Body"])["key"]) for m in messages]


def test_a_backfill_across_prefixes_gives_one_record_each_and_a_second_makes_nothing(
    world: World, tmp_path: Path
) -> None:
    # GIVEN images in the pipeline bucket's legacy/ prefix and in another bucket
    images = {(world.bucket, f"legacy/a/img-{n:03d}.png"): tiny_image(n) for n in range(24)}
    images |= {
        (world.bucket, f"legacy/ünïcode/猫 {n} +plus%.jpg"): tiny_image(100 + n, "JPEG")
        for n in range(6)
    }
    images |= {(world.photos, f"2019/{n:03d}.jpg"): tiny_image(200 + n, "JPEG") for n in range(24)}
    # ... the same bytes again under other keys (content duplicates) ...
    dups = {(world.bucket, f"legacy/dup/copy-{n}.png"): tiny_image(n) for n in range(4)}
    dups |= {(world.photos, f"dup/{n}.png"): tiny_image(n) for n in range(4)}
    # ... files that are not images, and an empty "folder"
    others = {(world.bucket, f"legacy/notes/{n}.txt"): b"not an image %d" % n for n in range(4)}
    for (bucket, key), body in (images | dups | others).items():
        world.put(bucket, key, body)
    world.put(world.bucket, "legacy/empty/", b"")
    everything = images | dups | others

    # WHEN both sources are backfilled (the processor not yet running) ...
    runs = [
        ("s3://" + world.bucket + "/legacy/", tmp_path / "legacy.json"),
        ("s3://" + world.photos + "/", tmp_path / "photos.json"),
    ]
    for url, checkpoint in runs:
        done = world.backfill(
            url, "--rate", "200", "--yes", "--no-wait", "--json", "--checkpoint", str(checkpoint)
        )
        assert done.returncode == 0, done.stderr
    queued = world.messages()
    assert sorted(keys_of(queued)) == sorted(everything)  # the folder marker is not sent
    for m in queued:  # back to the queue for the processor
        world.sqs.change_message_visibility(
            QueueUrl=world.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    # ... some objects are deleted after they were queued, before the processor reads them
    gone = sorted(images)[-3:] + sorted(dups)[:1]
    for bucket, key in gone:
        world.s3.delete_object(Bucket=bucket, Key=key)
    drain(world.sqs, world.queue_url, lambda_handler)

    # THEN every surviving object has exactly one record, and nothing else has one
    survivors = {k: v for k, v in everything.items() if k not in gone}
    ids = {image_id(b, k): (b, k) for b, k in survivors}
    items = world.records()
    assert sorted(i["id"]["S"] for i in items) == sorted(ids)
    status = Counter(i["status"]["S"] for i in items)
    assert status == {"done": len(survivors) - len(others), "failed": len(others)}
    for item in items:
        if item["status"]["S"] == "failed":
            assert item["error"]["M"]["code"]["S"] == "unsupported_format"
    # ... each done image has its rendition, duplicates share the renditions' bytes
    public = world.s3.list_objects_v2(Bucket=world.bucket, Prefix="public/").get("KeyCount", 0)
    assert public == len(survivors) - len(others)
    # ... and nothing was written outside public/ or deleted from the originals
    for bucket, key in survivors:
        assert world.s3.head_object(Bucket=bucket, Key=key)["ContentLength"] >= 0

    # WHEN the summary is read back from the records
    report = world.backfill(
        "s3://" + world.bucket + "/legacy/", "--report", "--json", "--checkpoint", str(runs[0][1])
    )
    assert report.returncode == 0, report.stderr
    summary = json.loads(report.stdout.splitlines()[-1])["summary"]
    legacy_gone = [g for g in gone if g[0] == world.bucket]
    legacy = [k for k in everything if k[0] == world.bucket]
    assert summary["objects"] == len(legacy)
    assert summary["missing"] == len(legacy_gone)
    assert summary["failed"] == {"unsupported_format": len(others)}
    legacy_dups = [k for k in dups if k[0] == world.bucket and k not in gone]
    assert summary["copied"] == len(legacy_dups)
    assert summary["done"] == len(legacy) - len(legacy_gone) - len(others)

    # WHEN the same objects are backfilled a second time (a new checkpoint)
    versions = {i["id"]["S"]: i["version"]["N"] for i in items}
    again = world.backfill(
        "s3://" + world.bucket + "/legacy/",
        "--rate",
        "200",
        "--yes",
        "--no-wait",
        "--json",
        "--checkpoint",
        str(tmp_path / "again.json"),
    )
    assert again.returncode == 0, again.stderr
    events_before = len(world.events())
    drain(world.sqs, world.queue_url, lambda_handler)
    # THEN nothing is made twice: no record changes, no rendition is added, no event is sent
    assert {i["id"]["S"]: i["version"]["N"] for i in world.records()} == versions
    assert world.s3.list_objects_v2(Bucket=world.bucket, Prefix="public/")["KeyCount"] == public
    assert events_before == len(items) and world.events() == []
    second = world.backfill(
        "s3://" + world.bucket + "/legacy/",
        "--report",
        "--json",
        "--checkpoint",
        str(tmp_path / "again.json"),
    )
    summary = json.loads(second.stdout.splitlines()[-1])["summary"]
    assert summary["already_done"] == len(legacy) - len(legacy_gone) - len(others)
    assert summary["derived"] == summary["copied"] == 0


def test_an_interrupted_backfill_resumes_without_sending_anything_twice(
    world: World, tmp_path: Path
) -> None:
    keys = [f"legacy/batch/{n:04d}.png" for n in range(120)]
    body = tiny_image(1)
    for key in keys:
        world.put(world.bucket, key, body)
    checkpoint = tmp_path / "resume.json"
    args = (
        "s3://" + world.bucket + "/legacy/",
        "--rate",
        "40",
        "--yes",
        "--no-wait",
        "--sniff",
        "0",
        "--checkpoint",
        str(checkpoint),
    )
    # WHEN the feed is interrupted (Ctrl-C) part way
    process = world.popen(*args)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if checkpoint.exists() and json.loads(checkpoint.read_text())["sent"] >= 30:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    # THEN it stops between batches: what the checkpoint says was sent is what the queue holds
    assert process.returncode == 130, stderr
    state = json.loads(checkpoint.read_text())
    assert 30 <= state["sent"] < len(keys) and not state["finished"]
    first = world.messages()
    assert len(first) == state["sent"]
    # WHEN the same command runs again
    rerun = world.backfill(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming" in rerun.stderr
    # THEN every object was sent exactly once over both runs
    sent = keys_of(first) + keys_of(world.messages())
    assert sorted(sent) == sorted((world.bucket, k) for k in keys)
    assert json.loads(checkpoint.read_text())["finished"] is True


def test_the_dry_run_counts_what_is_there_and_the_feed_keeps_the_rate(
    world: World, tmp_path: Path
) -> None:
    keys = {f"legacy/r/{n:03d}.png": tiny_image(n) for n in range(50)}
    keys |= {f"legacy/r/{n:03d}.jpeg": tiny_image(n, "JPEG") for n in range(50, 60)}
    keys["legacy/r/readme.md"] = b"# not an image"
    for key, body in keys.items():
        world.put(world.bucket, key, body)
    world.put(world.bucket, "public/thumbs/output.webp", b"RIFF")  # never a source
    rate = 25.0
    # WHEN the dry run counts the whole bucket
    dry = world.backfill(f"s3://{world.bucket}/", "--rate", str(rate), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    out = json.loads(dry.stdout)
    tally, est = out["tally"], out["estimate"]
    # THEN it counts the objects, bytes and formats there are, and skips the output
    assert tally["objects"] == len(keys)
    assert tally["bytes"] == sum(len(b) for b in keys.values())
    assert tally["formats"] == {"png": 50, "jpeg": 10, "other": 1}
    assert tally["skipped"] == {"pipeline output": 1}
    assert tally["sniffed"] == {"png": 50, "jpeg": 10, "unknown": 1}
    # ... and its estimate is the count at the rate and the capacity model's cost
    assert est["objects"] == len(keys)
    assert est["seconds"] == pytest.approx(len(keys) / min(rate, est["pipeline_rate"]))
    assert est["usd"] == pytest.approx(len(keys) * est["usd_per_1000"] / 1000)
    # WHEN it runs: the messages' send times (SQS's own clock) show the pace kept
    run = world.backfill(
        f"s3://{world.bucket}/legacy/",
        "--rate",
        str(rate),
        "--yes",
        "--no-wait",
        "--sniff",
        "0",
        "--checkpoint",
        str(tmp_path / "r.json"),
    )
    assert run.returncode == 0, run.stderr
    sent = sorted(int(m["Attributes"]["SentTimestamp"]) for m in world.messages())
    assert len(sent) == len(keys)
    # The first batch goes at once, the last no earlier than (n - batch) / rate after it.
    spread_s = (sent[-1] - sent[0]) / 1000
    measured = (len(sent) - 10) / spread_s
    assert measured <= rate * 1.2  # never faster than asked (ms timestamps: a margin)
    assert measured >= rate * 0.2  # and not stalled (generous: a shared, noisy machine)


def _inventory(world: World, fmt: str, rows: list[tuple[str, str, int, str]]) -> str:
    """An S3 Inventory report as AWS writes it; the manifest's s3:// URL."""
    prefix = f"inventory/{world.photos}/daily/2024-05-01T01-00Z"
    if fmt == "CSV":
        text = io.StringIO()
        for bucket, key, size, etag in rows:
            text.write(f'"{bucket}","{quote_plus(key, safe="/")}","{size}","{etag}","true"\n')
        data = gzip.compress(text.getvalue().encode())
        schema = "Bucket, Key, Size, ETag, IsLatest"
        name = "data/0001.csv.gz"
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "bucket": [r[0] for r in rows],
                "key": [r[1] for r in rows],
                "size": [r[2] for r in rows],
                "e_tag": [r[3] for r in rows],
                "is_latest": [True] * len(rows),
            }
        )
        out = io.BytesIO()
        pq.write_table(table, out)
        data = out.getvalue()
        schema = (
            "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); "
            "optional int64 size; optional binary e_tag (UTF8); optional boolean is_latest; }"
        )
        name = "data/0001.parquet"
    world.put(world.bucket, f"{prefix}/{name}", data)
    manifest = {
        "sourceBucket": world.photos,
        "destinationBucket": f"arn:aws:s3:::{world.bucket}",
        "version": "2016-11-30",
        "creationTimestamp": "1714525200000",
        "fileFormat": "CSV" if fmt == "CSV" else "Parquet",
        "fileSchema": schema,
        "files": [
            {
                "key": f"{prefix}/{name}",
                "size": len(data),
                "MD5checksum": hashlib.md5(data).hexdigest(),
            }
        ],
    }
    world.put(world.bucket, f"{prefix}/manifest.json", json.dumps(manifest).encode())
    return f"s3://{world.bucket}/{prefix}/manifest.json"


@pytest.mark.parametrize("fmt", ["CSV", "Parquet"])
def test_an_inventory_report_is_read(world: World, tmp_path: Path, fmt: str) -> None:
    rows = []
    for n, key in enumerate(["a/1.jpg", "b/ünï cöde+1.png", "c/%41 odd.jpg", "d/notes.txt"]):
        body = tiny_image(n, "PNG")
        world.put(world.photos, key, body)
        rows.append((world.photos, key, len(body), hashlib.md5(body).hexdigest()))
    manifest = _inventory(world, fmt, rows)
    dry = world.backfill("--inventory", manifest, "--dry-run", "--json", "--sniff", "0")
    assert dry.returncode == 0, dry.stderr
    tally = json.loads(dry.stdout)["tally"]
    assert tally["objects"] == 4 and tally["bytes"] == sum(r[2] for r in rows)
    assert tally["formats"] == {"jpeg": 2, "png": 1, "other": 1}
    run = world.backfill(
        "--inventory",
        manifest,
        "--yes",
        "--no-wait",
        "--sniff",
        "0",
        "--checkpoint",
        str(tmp_path / f"{fmt}.json"),
    )
    assert run.returncode == 0, run.stderr
    bodies = [json.loads(m["Body"]) for m in world.messages()]
    assert sorted((b["bucket"], b["key"], b["size"], b["etag"]) for b in bodies) == sorted(rows)
