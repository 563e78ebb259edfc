"""The capacity model: how many images per second each part of the pipeline admits, and where
the first bottleneck is, for the template's defaults and for documented settings.

Inputs, and nothing else:

- AWS's published limits (``LIMITS``, each with where AWS says it);
- what this project measured: DynamoDB item sizes and write units per image
  (benchmarks/results/records.json, ``python -m benchmarks.records``) and CPU and wall time
  per image (benchmarks/results/results.json, ``python -m benchmarks.run``);
- the template's parameters (infra/template.yaml) and the stated traffic assumptions
  (``Traffic``).

Pure arithmetic: ``python -m benchmarks.capacity`` writes docs/capacity.md from it, and
tests/benchmarks/test_capacity.py checks the arithmetic and that the document is current.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.cost import duration_ms
from infra.item_size import read_units

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "benchmarks" / "results" / "records.json"
RESULTS = REPO / "benchmarks" / "results" / "results.json"
# The default ladder's cost against the JPEG + WebP ladder results.json measures, in one run
# (``python -m benchmarks.bytes``): the speed suite compares equal ladders with Pillow.
BYTES = REPO / "benchmarks" / "results" / "bytes.json"
DOC = REPO / "docs" / "capacity.md"
RATES = (10, 100, 1_000, 10_000)
TENTH = 0.1  # the target: no partition above a tenth of its limit at 1,000 images/s


@dataclass(frozen=True)
class Limit:
    value: float
    unit: str
    source: str


DDB = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide"
LIMITS: dict[str, Limit] = {
    "ddb_partition_wcu": Limit(1_000, "WCU/s per partition", f"{DDB}/bp-partition-key-design.html"),
    "ddb_partition_rcu": Limit(3_000, "RCU/s per partition", f"{DDB}/bp-partition-key-design.html"),
    "ddb_table_wcu": Limit(
        40_000, "WRU/s per on-demand table or index (quota)", f"{DDB}/ServiceQuotas.html"
    ),
    "ddb_new_table_wcu": Limit(
        4_000, "WRU/s a new on-demand table serves at once", f"{DDB}/warm-throughput.html"
    ),
    "s3_prefix_put": Limit(
        3_500,
        "PUT/s per partitioned prefix",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html",
    ),
    "s3_prefix_get": Limit(
        5_500,
        "GET/s per partitioned prefix",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html",
    ),
    "lambda_account_concurrency": Limit(
        1_000,
        "concurrent executions per Region (default quota)",
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
    ),
    "lambda_scaling": Limit(
        1_000,
        "new execution environments per function per 10 s",
        "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html",
    ),
    "esm_sqs_max_concurrency": Limit(
        1_000,
        "concurrent batches per SQS event source mapping",
        "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
    ),
    "esm_sqs_scale_up": Limit(
        300,
        "more concurrent batches per minute",
        "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
    ),
    "sqs_in_flight": Limit(
        120_000,
        "in-flight messages per standard queue",
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html",
    ),
    "apigw_account_rps": Limit(
        10_000,
        "requests/s per account and Region, HTTP APIs (quota)",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html",
    ),
    "eventbridge_put_events": Limit(
        10_000,
        "PutEvents entries/s per account (us-east-1, us-west-2, eu-west-1; less elsewhere)",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html",
    ),
    "cloudfront_invalidation_paths": Limit(
        3_000,
        "invalidation paths in progress (15 with wildcards)",
        "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html",
    ),
}


@dataclass(frozen=True)
class Traffic:
    """What the model assumes of the callers (stated, not measured)."""

    # POST /uploads (presign) and one GET /images/{id} once it is processed, per image.
    api_requests_per_image: float = 2.0
    # GET /images pages per uploaded image (galleries, ops): one page per ten uploads.
    list_pages_per_image: float = 0.1
    list_page_limit: int = 50
    api_ms_per_request: float = 50.0  # API function duration (a page fans out in parallel)
    dynamodb_ms_per_image: float = 15.0  # GetItem, PutItem x2 at single-digit ms each
    cdn_origin_gets_per_file: float = 1.0  # each rendition file fetched once to fill a cache
    # A backfill's feeder sends one SendMessageBatch of 10 at a time; a round trip in the
    # Region takes about this long, so one feeding process tops out at 10 / this.
    feed_round_trip_ms: float = 25.0
    # The processor's invocation per object of an S3 Batch Operations job: it only queues.
    enqueue_ms: float = 20.0
    # One invocation of the on-demand function: reading the record and a source, making one
    # size, its PUT and two writes (stated, generous: the engine's whole ladder measures under
    # a tenth of this per corpus image; benchmarks/ondemand.py measures a miss).
    on_demand_ms: float = 1_000.0


@dataclass(frozen=True)
class Facts:
    """Measured: per done image, from the corpus."""

    wcu_per_image: dict[str, float]  # "table" and each index -> WCU per done image
    writes_per_image: float  # table writes (PutItem) per done image
    item_bytes: dict[str, float]  # done / processing item size
    cpu_ms: float  # engine CPU per image, all threads
    wall_ms: float  # engine wall time per image, warm, one at a time
    io_ms: float  # S3 read + rendition writes per image (local stack)
    files_per_folder: dict[str, int]  # rendition files per image, per public/ folder
    images: int  # corpus images measured
    lambda_usd_per_1000: float = 0.0  # processor Lambda per 1,000 images, arm64, as deployed

    @classmethod
    def load(
        cls,
        records: Mapping[str, Any],
        results: Mapping[str, Any],
        folders: Mapping[str, int],
        ladder: Mapping[str, Any] | None = None,
    ) -> Facts:
        """``ladder``: bytes.json's ``ladder_cost``, the default ladder against the one
        results.json measured; it scales the engine's time and cost per image."""
        done = records["by_outcome"]["done"]
        engine = results["kinds"]["all"]["impls"]["engine"]
        cpu = wall = billed = 1.0
        if ladder is not None:
            before, now = ladder["before"], ladder["default"]
            cpu, wall = now["cpu_ms"] / before["cpu_ms"], now["wall_ms"] / before["wall_ms"]
            billed = now["billed_ms_per_1000"] / before["billed_ms_per_1000"]
        stages = results["e2e"]["stages_ms"]
        io = sum(v for k, v in stages.items() if k.startswith(("S3 read", "S3 writes")))
        return cls(
            wcu_per_image={t: s["mean"] for t, s in done["wcu_per_image"].items()},
            writes_per_image=done["writes_per_image"]["mean"],
            item_bytes={k: v["mean"] for k, v in done["item_bytes"].items()},
            cpu_ms=engine["cpu_ms"] * cpu,
            wall_ms=engine["wall_ms"] * wall,
            io_ms=io,
            files_per_folder=dict(folders),
            images=records["images"],
            lambda_usd_per_1000=lambda_usd_per_1000(results) * billed,
        )


@dataclass(frozen=True)
class Settings:
    """One deployment: template parameters plus the account quotas and layout it assumes."""

    label: str
    memory_mb: int
    max_concurrency: int  # MaxConcurrency: the event source mapping's
    batch_size: int
    batch_window_s: float
    api_rate: float  # ApiThrottleRate
    list_shards: int  # ListShards
    queues: int = 1  # processing queues, each with its own event source mapping
    lambda_quota: int = 1_000  # the account's concurrency quota
    api_account_rps: int = 10_000  # the account's HTTP API throttle quota
    table_warm_wcu: int = 4_000  # what the table takes at once (WarmThroughput raises it)
    s3_partitions: int = 1  # partitions S3 has split raw/ and each public/<folder>/ into
    changes: tuple[str, ...] = ()  # what differs from the template's defaults, in words

    @classmethod
    def from_parameters(cls, label: str, params: Mapping[str, Any], **more: Any) -> Settings:
        return cls(
            label=label,
            memory_mb=int(params["ProcessorMemory"]),
            max_concurrency=int(params["MaxConcurrency"]),
            batch_size=int(params["BatchSize"]),
            batch_window_s=float(params["BatchWindowSeconds"]),
            api_rate=float(params["ApiThrottleRate"]),
            list_shards=int(params["ListShards"]),
            **more,
        )


@dataclass(frozen=True)
class Part:
    """One limit the pipeline runs into: how much of it one image per second uses."""

    name: str
    limit: float
    unit: str
    per_image: float  # of ``unit`` per image/s (0: not driven by the image rate)
    note: str = ""
    partition: bool = False  # a single partition (the tenth-of-its-limit target applies)

    @property
    def admits(self) -> float:
        """Sustained images/s before this part is at its limit."""
        return math.inf if self.per_image == 0 else self.limit / self.per_image

    def load(self, rate: float) -> float:
        """Fraction of the limit used at ``rate`` images/s."""
        return rate * self.per_image / self.limit


def seconds_per_image(facts: Facts, settings: Settings, traffic: Traffic) -> float:
    """One image's processor time on Lambda: the engine at this memory, S3 and DynamoDB."""
    engine = duration_ms(facts.wall_ms, facts.cpu_ms, settings.memory_mb, cores=2)
    return (engine + facts.io_ms + traffic.dynamodb_ms_per_image) / 1000


def shard_query_rcu(facts: Facts, settings: Settings, traffic: Traffic) -> float:
    """RCU of one shard's Query in a listing page (eventually consistent)."""
    per_shard = min(
        traffic.list_page_limit, math.ceil(2 * traffic.list_page_limit / settings.list_shards) + 1
    )
    return read_units(int(per_shard * facts.item_bytes["done"]))


def parts(facts: Facts, settings: Settings, traffic: Traffic = Traffic()) -> list[Part]:
    t = traffic
    s = settings
    seconds = seconds_per_image(facts, s, t)
    api_s = t.api_requests_per_image * t.api_ms_per_request / 1000
    batch_s = s.batch_window_s + s.batch_size * seconds
    wcu = facts.wcu_per_image
    lim = LIMITS
    out = [
        Part(
            "API Gateway stage throttle (ApiThrottleRate)",
            s.api_rate,
            "requests/s",
            t.api_requests_per_image + t.list_pages_per_image,
        ),
        Part(
            "API Gateway account quota",
            s.api_account_rps,
            "requests/s",
            t.api_requests_per_image + t.list_pages_per_image,
        ),
        Part(
            "processor concurrency (MaxConcurrency x queues)",
            min(s.max_concurrency, lim["esm_sqs_max_concurrency"].value) * s.queues,
            "concurrent",
            seconds,
            f"{seconds * 1000:.0f} ms per image at {s.memory_mb} MB",
        ),
        Part(
            "Lambda account concurrency",
            s.lambda_quota,
            "concurrent",
            seconds + api_s,
            "processor and API together",
        ),
        Part(
            "SQS in-flight messages",
            lim["sqs_in_flight"].value * s.queues,
            "messages",
            batch_s,
            "a message is in flight for its batch window and its batch",
        ),
        Part(
            "S3 raw/ PUT (one upload)",
            lim["s3_prefix_put"].value * s.s3_partitions,
            "PUT/s",
            1.0,
            "upload keys start with a random hex uuid, so S3 can split raw/",
        ),
        Part(
            "S3 raw/ GET (the processor's read)",
            lim["s3_prefix_get"].value * s.s3_partitions,
            "GET/s",
            1.0,
        ),
        Part(
            "S3 public/<folder>/ PUT (renditions)",
            lim["s3_prefix_put"].value * s.s3_partitions,
            "PUT/s",
            float(max(facts.files_per_folder.values())),
            "keys start with the image id (a hash), so S3 can split a folder further",
        ),
        Part(
            "S3 public/<folder>/ GET (CDN cache fills)",
            lim["s3_prefix_get"].value * s.s3_partitions,
            "GET/s",
            max(facts.files_per_folder.values()) * t.cdn_origin_gets_per_file,
        ),
        Part(
            "CloudFront invalidations",
            lim["cloudfront_invalidation_paths"].value,
            "paths",
            0.0,
            "uploads none (rendition keys carry a content version); deletes: see Deletes",
        ),
        Part(
            "DynamoDB table, what it takes at once",
            s.table_warm_wcu,
            "WCU/s",
            wcu["table"],
        ),
        Part("DynamoDB table quota", lim["ddb_table_wcu"].value, "WCU/s", wcu["table"]),
    ]
    for index in sorted(k for k in wcu if k != "table"):
        out.append(
            Part(f"DynamoDB index {index} quota", lim["ddb_table_wcu"].value, "WCU/s", wcu[index])
        )
    partition_wcu = lim["ddb_partition_wcu"].value
    for index, key in (("by_created", "image#<n>"), ("by_state", "processing#<n>")):
        out.append(
            Part(
                f"{index} partition {key}",
                partition_wcu,
                "WCU/s",
                wcu[index] / s.list_shards,
                f"{wcu[index]:g} WCU per image over {s.list_shards} shards",
                partition=True,
            )
        )
    out.append(
        Part(
            "by_uploader partition <uploader>#<n>",
            partition_wcu,
            "WCU/s",
            wcu["by_uploader"] / s.list_shards,
            "worst case: one uploader sends every image",
            partition=True,
        )
    )
    out.append(
        Part(
            "listing reads, each shard partition",
            lim["ddb_partition_rcu"].value,
            "RCU/s",
            t.list_pages_per_image * shard_query_rcu(facts, s, t),
            "every page reads every shard once",
            partition=True,
        )
    )
    out.append(
        Part(
            "EventBridge PutEvents (completion events)",
            lim["eventbridge_put_events"].value,
            "events/s",
            1.0,
            "one event per final state; a quota AWS raises on request",
        )
    )
    return out


def backfill_parts(facts: Facts, settings: Settings, traffic: Traffic = Traffic()) -> list[Part]:
    """What a backfill runs into: the pipeline less the API (a backfill makes no API calls)
    plus the feeder itself."""
    pipeline = [p for p in parts(facts, settings, traffic) if not p.name.startswith("API")]
    feeder = Part(
        "backfill feeder (one process, SendMessageBatch of 10)",
        10 * 1000 / traffic.feed_round_trip_ms,
        "messages/s",
        1.0,
        f"{traffic.feed_round_trip_ms:g} ms a round trip; S3 Batch Operations has no such limit",
    )
    return [*pipeline, feeder]


def ramp(facts: Facts, settings: Settings, traffic: Traffic = Traffic()) -> str:
    """How long Lambda's SQS scaling takes to reach the concurrency the ceiling needs."""
    ceiling = admitted(parts(facts, settings, traffic))
    needed = min(
        ceiling * seconds_per_image(facts, settings, traffic),
        settings.max_concurrency * settings.queues,
    )
    per_minute = LIMITS["esm_sqs_scale_up"].value * settings.queues
    minutes = max(0.0, needed - 5 * settings.queues) / per_minute
    return (
        f"It needs {needed:,.0f} processor instances, which Lambda's SQS scaling (+300 a "
        f"minute per event source mapping) reaches in {minutes:.1f} min; uploads queue meanwhile."
    )


def bottleneck(found: Sequence[Part]) -> Part:
    return min(found, key=lambda p: p.admits)


def admitted(found: Sequence[Part]) -> float:
    return bottleneck(found).admits


def settings_for(params: Mapping[str, Any]) -> list[Settings]:
    """The defaults, the documented raise to 1,000 images/s, and what 10,000 takes."""
    defaults = Settings.from_parameters("template defaults", params)
    raised = replace(
        defaults,
        label="1,000 images/s: parameters raised",
        max_concurrency=850,
        api_rate=3_000,
        changes=(
            "MaxConcurrency=850",
            # The deploy lets an unreserved processor take at most half the account's pool
            # (infra/deploy/preflight.py); reserved, it may take all but Lambda's 100.
            "ReservedConcurrency=850",
            "ApiThrottleRate=3000",
            "ApiThrottleBurst=5000",
        ),
    )
    ten_k = replace(
        raised,
        label="10,000 images/s: what to change",
        max_concurrency=1_000,
        queues=8,
        api_rate=25_000,
        list_shards=64,
        lambda_quota=10_000,
        api_account_rps=30_000,
        table_warm_wcu=40_000,
        # three renditions a folder (AVIF, WebP, JPEG): 3,500 PUT/s a partition needs 9 of them
        s3_partitions=12,
        changes=(
            "MaxConcurrency=1000 (an event source mapping's most)",
            "eight processing queues, each with its own event source mapping (S3 notifications"
            " split by the upload key's first hex digit, two digits a queue): a template change",
            "ApiThrottleRate=25000, and the account's HTTP API quota raised to 30,000 requests/s",
            "ListShards=64",
            "the account's Lambda concurrency quota raised to 10,000",
            "WarmThroughput of 40,000 WCU/s on the table and its indexes (a template change)",
            "raw/ and public/<folder>/ partitioned 12 ways by S3 (it splits them under sustained"
            " load, answering 503 Slow Down meanwhile; AWS support can do it ahead)",
        ),
    )
    return [defaults, raised, ten_k]


# --- cost ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prices:
    """On-demand prices, USD, us-east-1 (the AWS pricing pages of each service)."""

    sqs_per_million: float = 0.40  # standard queue requests (a batch of 10 is one)
    s3_get_per_1000: float = 0.0004  # GET
    s3_put_per_1000: float = 0.005  # PUT, COPY, LIST
    ddb_write_per_million: float = 0.625  # write request units, on demand
    ddb_read_per_million: float = 0.125  # read request units, on demand
    events_per_million: float = 1.00  # custom events published
    lambda_requests_per_million: float = 0.20
    lambda_arm64_gb_s: float = 0.0000133334
    batch_ops_per_job: float = 0.25
    cloudfront_free_paths_per_month: int = 1_000  # invalidation paths; a wildcard is one
    cloudfront_per_path: float = 0.005
    batch_ops_per_million_objects: float = 1.00


@dataclass(frozen=True)
class CostLine:
    part: str
    usd_per_1000: float
    note: str
    feed: str = ""  # "" for every image; "paced" or "batch" for one way of backfilling


def cost_lines(
    facts: Facts,
    settings: Settings,
    lambda_usd_per_1000: float,
    traffic: Traffic = Traffic(),
    prices: Prices = Prices(),
) -> list[CostLine]:
    """What 1,000 images cost, part by part: processing, the events, and each backfill feed."""
    files = sum(facts.files_per_folder.values())
    wcu = sum(facts.wcu_per_image.values())
    per_k = 1000 / 1e6  # a price per million, for 1,000 images
    receives = 2 / settings.batch_size  # ReceiveMessage and DeleteMessageBatch per batch
    enqueue_gb_s = traffic.enqueue_ms / 1000 * settings.memory_mb / 1024
    return [
        CostLine("processor Lambda", lambda_usd_per_1000, "measured: benchmarks/results"),
        CostLine(
            "SQS receive and delete",
            receives * per_k * prices.sqs_per_million,
            f"batches of {settings.batch_size}",
        ),
        CostLine("S3 GET of the original", prices.s3_get_per_1000, "one per image"),
        CostLine("S3 PUT of the renditions", files * prices.s3_put_per_1000, f"{files} files"),
        CostLine(
            "DynamoDB writes",
            wcu * per_k * prices.ddb_write_per_million,
            f"{wcu:g} WCU, table and indexes",
        ),
        CostLine(
            "completion events",
            per_k * (prices.events_per_million + prices.ddb_write_per_million),
            "one PutEvents entry and the outbox's clearing write (1 WCU)",
        ),
        CostLine(
            "backfill: listing and queueing",
            prices.s3_put_per_1000 / 1000 + 0.1 * per_k * prices.sqs_per_million,
            "LIST of 1,000 keys, SendMessageBatch of 10",
            feed="paced",
        ),
        CostLine(
            "backfill: Batch Operations",
            per_k * prices.batch_ops_per_million_objects
            + per_k * prices.lambda_requests_per_million
            + 1000 * enqueue_gb_s * prices.lambda_arm64_gb_s
            + per_k * prices.sqs_per_million,
            f"per object, an invocation of {traffic.enqueue_ms:g} ms and a SendMessage; plus "
            f"${prices.batch_ops_per_job:.2f} per job",
            feed="batch",
        ),
    ]


# --- sizes made on demand (docs/sizes.md) ----------------------------------------------------


def write_units(size: float) -> float:
    """WCU of one write of an item of ``size`` bytes (an UpdateItem is charged the larger of
    the item before and after, whole)."""
    return float(max(1, math.ceil(size / 1024)))


def on_demand_lines(
    facts: Facts,
    settings: Settings,
    traffic: Traffic = Traffic(),
    prices: Prices = Prices(),
) -> list[CostLine]:
    """What 1,000 CDN misses on sizes cost: each is an invocation that reads the record,
    claims the size, reads a source, makes one file, PUTs it and lists it. A hit costs
    nothing beyond any rendition's (the CDN, and S3 GETs to fill its caches)."""
    per_k = 1000 / 1e6
    item = facts.item_bytes["done"]
    # GetItem (consistent), the claim's UpdateItem, and the listing's UpdateItem, which
    # by_created projects (the renditions), so its index entry is written again too.
    reads = read_units(int(item), consistent=True)
    writes = write_units(item) + 2 * write_units(item + 300)
    gb_s = traffic.on_demand_ms / 1000 * settings.memory_mb / 1024
    return [
        CostLine(
            "on-demand Lambda",
            per_k * prices.lambda_requests_per_million + 1000 * gb_s * prices.lambda_arm64_gb_s,
            f"one invocation of {traffic.on_demand_ms:,.0f} ms (stated; the whole ladder "
            f"measures {facts.wall_ms:,.0f} ms of engine time per corpus image)",
        ),
        CostLine(
            "S3 GETs",
            2 * prices.s3_get_per_1000,
            "the miss's own (S3 answers 403/404) and the source's",
        ),
        CostLine("S3 PUT of the size", prices.s3_put_per_1000, "one file"),
        CostLine(
            "DynamoDB",
            per_k * (reads * prices.ddb_read_per_million + writes * prices.ddb_write_per_million),
            f"{reads:g} RCU (GetItem), {writes:g} WCU (claim, listing and its index entry)",
        ),
    ]


def on_demand_parts(facts: Facts, settings: Settings, traffic: Traffic = Traffic()) -> list[Part]:
    """What bounds misses per second (a miss makes one file: ``per_image`` is per miss)."""
    item = facts.item_bytes["done"]
    seconds = traffic.on_demand_ms / 1000
    return [
        Part(
            "on-demand function (account concurrency)",
            settings.lambda_quota / seconds,
            "misses/s",
            1.0,
            "unless OnDemandConcurrency reserves fewer",
        ),
        Part(
            "S3 public/sizes/ PUT",
            LIMITS["s3_prefix_put"].value * settings.s3_partitions,
            "PUT/s",
            1.0,
            "one prefix, as each rendition folder",
        ),
        Part(
            "DynamoDB: one image's item (many sizes of one image at once)",
            LIMITS["ddb_partition_wcu"].value,
            "WCU/s",
            write_units(item) + write_units(item + 300),
            "claim and listing on the same item",
            partition=True,
        ),
    ]


def cost_per_1000(lines: Sequence[CostLine], feed: str = "") -> float:
    """Every image's parts plus one feed's ("" for uploads)."""
    return sum(line.usd_per_1000 for line in lines if line.feed in ("", feed))


def lambda_usd_per_1000(results: Mapping[str, Any], arch: str = "arm64") -> float:
    return float(results["cost"]["engine"]["configured"]["usd_per_1000"][arch])


# --- the document ------------------------------------------------------------------------


def _n(value: float) -> str:
    if math.isinf(value):
        return "unbounded"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _pct(load: float) -> str:
    if load == 0:
        return "0"
    text = f"{load * 100:.0f}%" if load >= 0.01 else "<1%"
    return f"**{text}**" if load > 1 else text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render(facts: Facts, params: Mapping[str, Any], traffic: Traffic = Traffic()) -> str:
    scenarios = settings_for(params)
    lines = [
        "# Capacity: where the pipeline stops, and what to raise",
        "",
        "Generated by `python -m benchmarks.capacity` from benchmarks/capacity.py (the model),",
        "AWS's published limits, the template's parameters and measured facts; a test fails when",
        "this file is not what the model says. Load is the share of each part's limit in use.",
        "",
        "## Summary",
        "",
    ]
    for s in scenarios:
        found = parts(facts, s, traffic)
        first = bottleneck(found)
        lines.append(
            f"- **{s.label}**: sustains {_n(first.admits)} images/s; first bottleneck: "
            f"{first.name}. {ramp(facts, s, traffic)}"
        )
    raised = parts(facts, scenarios[1], traffic)
    worst = max((p for p in raised if p.partition), key=lambda p: p.load(1_000))
    lines += [
        f"- At 1,000 images/s the busiest partition of any table or index is {worst.name} at "
        f"{worst.load(1_000) * 100:.1f}% of its limit (target: at most 10%).",
        "",
        "## Measured facts",
        "",
        f"- Corpus: {facts.images} images through the processor on moto's server "
        "(`python -m benchmarks.records`, benchmarks/results/records.json), each write counted "
        "as if the upload named an uploader, as the access issue's records will.",
        f"- Table writes per image: {facts.writes_per_image:g}: the first image of a batch "
        "writes its first sight as its try starts (PutItem `processing`, one try) and PutItem "
        "`done`; each other one has its first sight written before any image of the batch "
        "starts (PutItem `processing`), its try counted as it starts (UpdateItem of `tries`, "
        "which no index projects) and PutItem `done`. All conditional: a first sight only if "
        "no record exists, a try only while `processing`, `done` only if no newer S3 "
        "sequencer is stored; a duplicate event is skipped before any of them.",
        "- Item sizes: "
        + ", ".join(f"{k} {v:,.0f} B" for k, v in sorted(facts.item_bytes.items()))
        + ".",
        "- WCU per done image: "
        + ", ".join(f"{k} {v:g}" for k, v in sorted(facts.wcu_per_image.items()))
        + f" (total {sum(facts.wcu_per_image.values()):g}).",
        f"- Engine per image, the default ladder: {facts.cpu_ms:.0f} ms CPU, "
        f"{facts.wall_ms:.0f} ms wall (benchmarks/results/results.json's JPEG + WebP ladder, "
        "times the default ladder's cost against it in benchmarks/results/bytes.json); S3 read "
        f"and rendition writes {facts.io_ms:.0f} ms.",
        "",
        "## Assumptions about traffic",
        "",
        f"- {traffic.api_requests_per_image:g} API requests per image (POST /uploads, one GET "
        f"/images/{{id}}) and {traffic.list_pages_per_image:g} listing pages of "
        f"{traffic.list_page_limit} per image; {traffic.api_ms_per_request:g} ms per API request.",
        f"- DynamoDB requests of one image: {traffic.dynamodb_ms_per_image:g} ms in all.",
        f"- Each rendition file is read from S3 {traffic.cdn_origin_gets_per_file:g} time(s) to "
        "fill the CDN.",
        "",
    ]
    for s in scenarios:
        found = parts(facts, s, traffic)
        lines += [f"## {s.label}", ""]
        knobs = (
            f"ProcessorMemory={s.memory_mb}, MaxConcurrency={s.max_concurrency}, "
            f"BatchSize={s.batch_size}, ApiThrottleRate={s.api_rate:g}, "
            f"ListShards={s.list_shards}"
        )
        lines.append(f"Settings: {knobs}.")
        if s.changes:
            lines += ["", "Changed from the defaults:", ""] + [f"- {c}" for c in s.changes]
        lines.append("")
        rows = [
            [
                p.name,
                f"{_n(p.limit)} {p.unit}",
                _n(p.admits),
                *(_pct(p.load(r)) for r in RATES),
                p.note,
            ]
            for p in sorted(found, key=lambda p: p.admits)
        ]
        header = ["part", "limit", "admits images/s", *(f"at {r:,}/s" for r in RATES), "note"]
        lines += _table(header, rows)
        lines.append("")
    defaults = scenarios[0]
    costs = cost_lines(facts, defaults, facts.lambda_usd_per_1000, traffic)
    lines += [
        "## Cost per 1,000 images",
        "",
        f"At the template's defaults (ProcessorMemory={defaults.memory_mb}, arm64), on-demand "
        "prices in us-east-1 (`Prices`). `imgpipe backfill` prints its estimate from these "
        "lines: every image's, plus its feed's.",
        "",
    ]
    lines += _table(
        ["part", "USD per 1,000", "note"],
        [
            [
                f"{c.part}" + (f" ({c.feed} feed only)" if c.feed else ""),
                f"${c.usd_per_1000:.5f}",
                c.note,
            ]
            for c in costs
        ],
    )
    lines += [
        "",
        f"- An upload: ${cost_per_1000(costs):.4f} per 1,000 images; a paced backfill "
        f"${cost_per_1000(costs, 'paced'):.4f}; a Batch Operations backfill "
        f"${cost_per_1000(costs, 'batch'):.4f} plus ${Prices().batch_ops_per_job:.2f} a job.",
        "- Storage, CDN transfer and the API are not per-image processing costs and are left out.",
        "",
        *deletes_section(facts, params),
        "## Sizes on demand",
        "",
        "A CDN miss on a size (docs/sizes.md) is one invocation of the on-demand function, two "
        "S3 GETs, one PUT and three DynamoDB requests; the size is then a stored file, and every "
        "later request a CDN hit or an S3 GET like any rendition's. Per 1,000 misses:",
        "",
    ]
    misses = on_demand_lines(facts, defaults, traffic)
    lines += _table(
        ["part", "USD per 1,000 misses", "note"],
        [[c.part, f"${c.usd_per_1000:.5f}", c.note] for c in misses],
    )
    lines += [
        "",
        f"- {cost_per_1000(misses):.4f} USD per 1,000 sizes made; an image may have at most "
        "`max_per_image` made (48 by default), so the bucket and this bill are bounded per "
        "image.",
    ]
    for part in on_demand_parts(facts, defaults, traffic):
        lines.append(f"- {part.name}: {_n(part.admits)} misses/s ({part.note}).")
    lines += [
        "",
        "## Backfill",
        "",
        "A backfill feeds the same queue as uploads and makes no API calls, so its ceiling is "
        "the pipeline's without the API parts, and the feeding process's own:",
        "",
    ]
    for s in scenarios[:2]:
        found = backfill_parts(facts, s, traffic)
        first = bottleneck(found)
        lines.append(
            f"- **{s.label}**: {_n(first.admits)} images/s; first bottleneck: {first.name}."
        )
    lines += [
        "",
        "Give `imgpipe backfill --rate` less than that, so uploads keep their share, or "
        "`--concurrency N` for the rate N processor instances sustain "
        f"({seconds_per_image(facts, defaults, traffic) * 1000:.0f} ms per image at "
        f"{defaults.memory_mb} MB). Beyond one feeding process, S3 Batch Operations invokes "
        "the processor per object and the queue absorbs the burst; MaxConcurrency is then the "
        "pace.",
        "",
        "## Why the keys look as they do",
        "",
        "- Every index partition key is `<value>#<hash(id) % ListShards>`: a partition key value "
        "lives in one partition (1,000 WCU/s), and a timestamp sort key keeps DynamoDB from "
        "splitting it for heat, so one constant key would cap the whole pipeline near "
        f"{1_000 / facts.wcu_per_image['by_created']:,.0f} images/s. Listings query each shard "
        "newest first and merge them; a cursor carries one boundary and the shards at their end.",
        "- `by_state` is sparse: only processing, failed and deleted items carry `state_pk`. An "
        "image costs it one put (processing) and one delete (done); done images, nearly all of "
        "them, are not in it.",
        "- `status=done` reads `by_created` with a filter rather than a done-only index: done "
        "images are nearly all of `by_created`, so the filter drops little, while a done-only "
        f"index would cost every image another {facts.wcu_per_image['by_created'] - 1:g} WCU.",
        "- `by_created` and `by_state` project what a listing shows (a page is Queries only); "
        "`by_sha256` and `by_uploader` keep keys only and the reader uses BatchGetItem: they are "
        "read rarely or in small pages, and a keys-only entry costs 1 WCU once.",
        "- ListShards may only be raised: items written under fewer shards stay in the low "
        "shards, which are still read; lowering it hides the items in the shards it drops.",
        "",
        "## A table created before the sharded keys",
        "",
        "Its indexes differ (`by_status` became the sparse `by_state`, projections changed, "
        "`by_uploader` is new) and its items lack the shard keys. CloudFormation adds or removes "
        "one global secondary index per stack update and cannot change one in place, so such a "
        "stack needs one update per index and every item rewritten (a PutItem of the same record "
        "writes the new keys). There is no command for that yet.",
        "",
        "## Limits used",
        "",
    ]
    lines += _table(
        ["limit", "value", "source"],
        [[k, f"{_n(v.value)} {v.unit}", v.source] for k, v in LIMITS.items()],
    )
    return "\n".join(lines) + "\n"


BULK_DELETES = (1_000, 50_000)


def invalidation_usd(paths: int, prices: Prices = Prices()) -> float:
    """One month's invalidation paths past the free ones."""
    return max(0, paths - prices.cloudfront_free_paths_per_month) * prices.cloudfront_per_path


def flushed_paths(
    images: int, *, rate: float, window_s: float, bound: int, per_image: int, max_exact: int
) -> int:
    """The most invalidation paths a bulk delete of ``images`` at ``rate`` images/s costs
    now: one flush per window while it lasts, each its deletes' exact paths (``per_image``
    each) while at most ``max_exact``, else at most ``bound`` wildcard paths."""
    paths, left = 0, images
    while left > 0:
        deletes = min(left, max(1, math.floor(rate * window_s)))
        paths += deletes * per_image if deletes * per_image <= max_exact else bound
        left -= deletes
    return paths


# CloudFront's regional edge caches (the second tier every edge fills from): after a flush
# that folded to folder wildcards, each cached rendition is fetched once more from S3 at
# most once per regional edge cache that is asked for it.
REGIONAL_EDGE_CACHES = 13


def deletes_section(facts: Facts, params: Mapping[str, Any]) -> list[str]:
    """What deleting images costs at the CDN, before the flusher and with it."""
    from infra.template import load_template, queue_settings
    from processor.core.keys import ID_LENGTH
    from processor.rules.invalidations import MAX_WILDCARDS_PER_FLUSH

    prices = Prices()
    exact = sum(facts.files_per_folder.values())
    folders = len(facts.files_per_folder)
    bound = MAX_WILDCARDS_PER_FLUSH
    window = float(params["InvalidationWindowSeconds"])
    rate = float(params["ApiWriteThrottleRate"])  # DELETE /images/{id}, each route's own
    max_exact = int(params["InvalidationExactPaths"])
    flush: dict[str, Any] = {
        "rate": rate,
        "window_s": window,
        "bound": bound,
        "per_image": exact,
        "max_exact": max_exact,
    }
    queue = queue_settings(load_template(), "InvalidationQueue")
    rows = []
    for n in BULK_DELETES:
        now = flushed_paths(n, **flush)
        rows.append(
            [
                f"{n:,}",
                f"{n * exact:,}",
                f"${invalidation_usd(n * exact, prices):,.2f}",
                f"{n / rate / 60:,.0f} min",
                f"{now:,}",
                f"${invalidation_usd(now, prices):,.2f}",
            ]
        )
    big = BULK_DELETES[-1]
    big_now = flushed_paths(big, **flush)
    month_windows = 30 * 24 * 3600 / window
    per_million_misses = 1000 * prices.s3_get_per_1000
    example = 100_000  # cached renditions, for the collateral's example
    hours_back = queue.visibility_timeout * queue.max_receive_count / 3600
    minutes_back = queue.visibility_timeout // 60
    lines = [
        "## Deletes and the CDN",
        "",
        f"A deleted image's erase needs its rendition paths invalidated: {exact} exact paths an "
        f"image (one per file, {folders} folders). CloudFront bills invalidation paths past "
        f"{prices.cloudfront_free_paths_per_month:,} a month at "
        f"${prices.cloudfront_per_path} a path (a wildcard path counts as one), and holds at "
        "most 3,000 exact paths, or 15 wildcard paths, in progress per distribution.",
        "",
        "The erase does not call CloudFront: it sends its paths to the invalidations queue (one "
        "message, before anything is purged), and the flusher takes what gathered in its "
        f"batching window (InvalidationWindowSeconds, {window:g} s) and sends ONE "
        "invalidation for all of it (`processor/rules/invalidations.py`): the exact paths "
        f"while there are at most {max_exact} (InvalidationExactPaths: "
        f"{max_exact // exact} deletes a window; nothing else is evicted), else the longest id "
        f"prefix `/<folder>/<id[:L]>*` that needs at most {bound} wildcard paths, else `/*`. "
        f"So a flush costs at most {max(max_exact, bound)} paths "
        f"(${invalidation_usd(max(max_exact, bound) + 1000, prices):,.2f} past the free "
        f"ones), and a bulk delete at most {bound} per window while it lasts. At the default "
        f"delete rate (ApiWriteThrottleRate, "
        f"{rate:g} deletes/s through the API):",
        "",
    ]
    lines += _table(
        [
            "images deleted",
            "before: exact paths",
            "cost",
            "lasts",
            "now: paths at most",
            "cost",
        ],
        rows,
    )
    lines += [
        "",
        f"- {big:,} deletes: ${invalidation_usd(big * exact, prices):,.2f} before, "
        f"${invalidation_usd(big_now, prices):,.2f} now (at most {big_now:,} paths, within the "
        "free 1,000 unless other invalidations spend them). Faster deletes (S3 "
        "`DeleteObjects` on `raw/`) take fewer windows and cost less; Lambda may split a "
        f"window between its pollers, each flush adding at most {bound} paths. A steady "
        f"trickle costs at most one flush per window: {month_windows:,.0f} windows a month, "
        f"at most {max(max_exact, bound)} paths each, and never more paths than "
        "the same deletes sent one by one. Exact paths are kept that long on purpose: a "
        "trickle of deletes folded into folder wildcards would empty the CDN's cache of "
        "renditions every window.",
        f"- Collateral: ids are random, so a wildcard shorter than a whole id "
        f"({ID_LENGTH} characters) also evicts other images' cached renditions. With "
        f"{folders} folders and {bound} wildcards, a window of more than {max_exact // exact} "
        "deletes in practice folds to one wildcard per folder (`/thumbs/*`): every cached "
        "rendition is "
        "then a CDN miss once more, fetched again from S3 (never a wrong answer), at most once "
        f"per regional edge cache ({REGIONAL_EDGE_CACHES}). For {example:,} cached renditions "
        f"asked for everywhere, a flush costs at most {example * REGIONAL_EDGE_CACHES:,} S3 "
        f"GETs, ${example * REGIONAL_EDGE_CACHES / 1e6 * per_million_misses:.2f}, and each "
        "miss the origin's latency once.",
        f"- A deleted rendition may still be served for the window ({window:g} s) plus "
        "CloudFront's 1-2 minutes to finish the invalidation. When CloudFront refuses "
        "(`TooManyInvalidationsInProgress`, throttling), the flusher fails the batch: its "
        f"messages come back after the queue's visibility timeout ({minutes_back} min), "
        f"{queue.max_receive_count} times ({hours_back:g} h) before the invalidations "
        "dead-letter queue and "
        "its alarm. Nothing is purged before its paths are on the queue "
        "([security](security.md#deleted-means-gone)).",
        "",
    ]
    return lines


def load_inputs(
    records: Path = RECORDS, results: Path = RESULTS, ladder: Path = BYTES
) -> tuple[Facts, dict[str, Any]]:
    from infra.template import parameter_defaults
    from processor.core.config import EngineConfig

    folders: dict[str, int] = {}
    for spec in EngineConfig().renditions:
        folders[spec.folder] = folders.get(spec.folder, 0) + len(spec.formats)
    facts = Facts.load(
        json.loads(records.read_text(encoding="utf-8")),
        json.loads(results.read_text(encoding="utf-8")),
        folders,
        json.loads(ladder.read_text(encoding="utf-8"))["summary"]["ladder_cost"],
    )
    return facts, dict(parameter_defaults())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    facts, params = load_inputs()
    args.out.write_text(render(facts, params), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
