"""Measure what the pipeline writes to DynamoDB per image: item sizes and write units.

``python -m benchmarks.records`` runs the product's path in this process against moto's server
on loopback (table, queue and raw/ notification from infra/template.yaml, as the local stack
provisions them): every corpus file is uploaded under raw/, the processor's ``lambda_handler``
is fed SQS batches until the queue is empty, and every PutItem and UpdateItem the repository
sends is recorded with the item it replaced (an UpdateItem that counts a try returns the item
it wrote; one refused by its condition changes nothing and is left out). Uploads do not name
an uploader yet (the access issue adds it), so each written item is counted as if it named
one of ``ASSUMED_UPLOADER``'s length: the per-uploader index and the listing projections are
then measured too. Sizes and write units are counted with infra/item_size.py against the
template's table, so the capacity model (benchmarks/capacity.py) reads measured numbers, not
guesses.
Writes benchmarks/results/records.json.
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
ASSUMED_UPLOADER = "user-0123456"  # a 12-character uploader on every record


class WriteLog:
    """Every PutItem of one client and every UpdateItem that returns what it wrote, with the
    item it replaced (tracked here)."""

    def __init__(self, client: Any, table: dict[str, Any]) -> None:
        self.table = table
        self.current: dict[str, dict[str, Any]] = {}
        self.writes: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.dynamodb.PutItem", self._before)
        client.meta.events.register("after-call.dynamodb.PutItem", self._after)
        client.meta.events.register("after-call.dynamodb.UpdateItem", self._after_update)

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["imgpipe_item"] = params["Item"]

    def _after_update(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        item = parsed.get("Attributes")  # ReturnValues=ALL_NEW: the item as written
        if http_response.status_code == 200 and item is not None:
            self._log(item, ok=True)

    def _after(self, http_response: Any, context: Any, **_: Any) -> None:
        item = context.get("imgpipe_item")
        if item is None:
            return
        self._log(item, ok=http_response.status_code == 200)

    def _log(self, item: dict[str, Any], *, ok: bool) -> None:
        image = item["id"]["S"]
        if "uploader" not in item:
            item = with_uploader(item)
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


def with_uploader(item: dict[str, Any]) -> dict[str, Any]:
    """The item as the repository writes it once the record names ASSUMED_UPLOADER."""
    from processor.aws.dynamo import from_item, serialize, to_item

    record = from_item(item).model_copy(update={"uploader": ASSUMED_UPLOADER})
    return serialize(to_item(record))


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


def _lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """ReceiveMessage entries as Lambda's SQS event source hands them to the function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class _Context:
    """The parts of a Lambda context the handler reads."""

    function_name = "imgpipe-records"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-records"
    memory_limit_in_mb = 2048
    aws_request_id = "records"
    log_group_name = "/aws/lambda/imgpipe-records"
    log_stream_name = "records"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def measure(corpus: Path) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    from infra import template as cfn
    from processor.entrypoints import bootstrap
    from processor.entrypoints.handler import lambda_handler
    from processor.entrypoints.settings import ProcessorSettings

    region = "us-east-1"
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        s3, sqs, dynamodb = (
            boto3.client(n, region_name=region, endpoint_url=endpoint)
            for n in ("s3", "sqs", "dynamodb")
        )
        # The template's table, queue and notification, as the local stack provisions them.
        bucket, table_name = "imgpipe-records", "imgpipe-records"
        table = cfn.table_definition()
        dynamodb.create_table(TableName=table_name, **table)
        queue_url = sqs.create_queue(QueueName="imgpipe-records")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        s3.create_bucket(Bucket=bucket)
        notification = cfn.notification_filter().queue_configuration(queue_arn)
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [notification]}
        )
        settings = ProcessorSettings(
            bucket=bucket, table=table_name, endpoint_url=endpoint, region=region
        )
        container = bootstrap.build(settings)
        bootstrap.reset(container)
        log = WriteLog(container.dynamodb_client, table)
        files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != "README.md")
        for n, path in enumerate(files):
            s3.put_object(Bucket=bucket, Key=f"raw/{n:03d}/{path.name}", Body=path.read_bytes())
        idle = 0
        while idle < 2:
            got = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=5,
                AttributeNames=["All"],
                WaitTimeSeconds=1,
            ).get("Messages", [])
            if not got:
                idle += 1
                continue
            idle = 0
            lambda_handler(_lambda_event(got, queue_arn, region), _Context())
            for m in got:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        result = summarize(log)
        result["corpus"] = "../shared/corpus (good and bad)"
        result["command"] = "python -m benchmarks.records"
        result["uploader"] = f"every upload named an uploader of {len(ASSUMED_UPLOADER)} chars"
        return result
    finally:
        bootstrap.reset()
        server.stop()


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
