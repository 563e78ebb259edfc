"""Measure what the pipeline writes to DynamoDB per image: item sizes and write units.

``python -m benchmarks.records`` runs the product's path in this process against the embedded
AWS (moto's server on loopback, resources provisioned from infra/template.yaml, as the local
stack does): every corpus file is uploaded under raw/, the processor's ``lambda_handler`` is
fed SQS batches until the queue is empty, and every PutItem the repository sends is recorded
with the item it replaced. Sizes and write units are counted with infra/item_size.py against
the template's table, so the capacity model (infra/capacity.py) reads measured numbers, not
guesses. Writes benchmarks/results/records.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from infra.item_size import item_bytes, write_cost

REPO = Path(__file__).resolve().parents[1]
CORPUS = (REPO / ".." / "shared" / "corpus").resolve()
OUT = REPO / "benchmarks" / "results" / "records.json"


class WriteLog:
    """Every successful PutItem of one client, with the item it replaced (tracked here)."""

    def __init__(self, client: Any, table: dict[str, Any]) -> None:
        self.table = table
        self.current: dict[str, dict[str, Any]] = {}
        self.writes: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.dynamodb.PutItem", self._before)
        client.meta.events.register("after-call.dynamodb.PutItem", self._after)

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["imgpipe_item"] = params["Item"]

    def _after(self, http_response: Any, context: Any, **_: Any) -> None:
        item = context.get("imgpipe_item")
        if item is None:
            return
        image = item["id"]["S"]
        ok = http_response.status_code == 200
        old = self.current.get(image)
        cost = write_cost(old, item, self.table) if ok else {"table": 1}
        self.writes.append(
            {
                "id": image,
                "status": item["status"]["S"],
                "ok": ok,  # a failed conditional write still costs its write units
                "bytes": item_bytes(item),
                "wcu": cost,
            }
        )
        if ok:
            self.current[image] = item


def summarize(log: WriteLog) -> dict[str, Any]:
    per_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for w in log.writes:
        per_image[w["id"]].append(w)
    final = {i: ws[-1]["status"] for i, ws in per_image.items()}

    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "mean": round(statistics.fmean(ordered), 2),
            "median": float(statistics.median(ordered)),
            "p95": float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]),
            "max": float(ordered[-1]),
        }

    out: dict[str, Any] = {"images": len(per_image), "by_outcome": {}}
    for outcome in sorted(set(final.values())):
        images = [ws for i, ws in per_image.items() if final[i] == outcome]
        targets = sorted({t for ws in images for w in ws for t in w["wcu"]})
        sizes: dict[str, dict[str, float]] = {}
        for status in sorted({w["status"] for ws in images for w in ws}):
            sizes[status] = stats(
                [w["bytes"] for ws in images for w in ws if w["status"] == status]
            )
        out["by_outcome"][outcome] = {
            "images": len(images),
            "writes_per_image": stats([len(ws) for ws in images]),
            "item_bytes": sizes,
            "wcu_per_image": {
                t: stats([sum(w["wcu"].get(t, 0) for w in ws) for ws in images]) for t in targets
            },
        }
    return out


def measure(corpus: Path) -> dict[str, Any]:
    import boto3

    from infra.template import table_definition
    from processor import bootstrap
    from processor.handler import lambda_handler
    from processor.local.aws import FAKE_CREDENTIALS, EmbeddedAws
    from processor.local.context import LambdaContext, function_arn
    from processor.local.provision import provision
    from processor.local.spec import load_spec
    from processor.local.worker import lambda_event
    from processor.settings import ProcessorSettings

    os.environ.update(FAKE_CREDENTIALS)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    region = "us-east-1"
    aws = EmbeddedAws(port=0)
    endpoint = aws.start()
    try:
        spec = load_spec(region=region)
        clients = {
            n: boto3.client(n, region_name=region, endpoint_url=endpoint)
            for n in ("s3", "sqs", "dynamodb")
        }
        made = provision(clients, spec, region=region)
        settings = ProcessorSettings(
            bucket=made.bucket, table=made.table, endpoint_url=endpoint, region=region
        )
        container = bootstrap.build(settings)
        bootstrap.reset(container)
        log = WriteLog(container.dynamodb_client, table_definition())
        files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != "README.md")
        for n, path in enumerate(files):
            key = f"raw/{n:03d}/{path.name}"
            clients["s3"].put_object(Bucket=made.bucket, Key=key, Body=path.read_bytes())
        sqs = clients["sqs"]
        idle = 0
        while idle < 2:
            got = sqs.receive_message(
                QueueUrl=made.queue_url,
                MaxNumberOfMessages=5,
                AttributeNames=["All"],
                WaitTimeSeconds=1,
            ).get("Messages", [])
            if not got:
                idle += 1
                continue
            idle = 0
            event = lambda_event(got, queue_arn=made.queue_arn, region=region)
            context = LambdaContext(
                function_name="imgpipe-records",
                invoked_function_arn=function_arn(region, spec.account, "imgpipe-records"),
                timeout_s=120,
            )
            lambda_handler(event, context)
            for m in got:
                sqs.delete_message(QueueUrl=made.queue_url, ReceiptHandle=m["ReceiptHandle"])
        result = summarize(log)
        result["corpus"] = "../shared/corpus (good and bad)"
        result["command"] = "python -m benchmarks.records"
        return result
    finally:
        bootstrap.reset()
        aws.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = measure(args.corpus)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result["by_outcome"], indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
