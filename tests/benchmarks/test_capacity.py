"""The capacity model: its arithmetic by hand, its targets, and docs/capacity.md being current."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from benchmarks import capacity
from benchmarks.capacity import Facts, Part, Settings, Traffic, parts
from infra import template as tpl

pytestmark = pytest.mark.unit

FACTS = Facts(
    wcu_per_image={"table": 3, "by_created": 3, "by_state": 2, "by_sha256": 1, "by_uploader": 1},
    writes_per_image=2,
    item_bytes={"done": 1200.0, "processing": 300.0},
    cpu_ms=200.0,
    wall_ms=150.0,
    io_ms=50.0,
    files_per_folder={"thumbs": 2, "optimized": 2},
    images=10,
)
SETTINGS = Settings(
    label="hand",
    memory_mb=1769,  # one vCPU: the engine takes its CPU time, 200 ms
    max_concurrency=10,
    batch_size=5,
    batch_window_s=1.0,
    api_rate=50,
    list_shards=32,
)
TRAFFIC = Traffic(dynamodb_ms_per_image=0.0)


def by_name(found: list[Part]) -> dict[str, Part]:
    return {p.name: p for p in found}


def test_each_part_by_hand() -> None:
    found = by_name(parts(FACTS, SETTINGS, TRAFFIC))
    # 200 ms engine + 50 ms S3: 0.25 s per image, so 10 instances take 40 images/s
    assert found["processor concurrency (MaxConcurrency x queues)"].admits == pytest.approx(40)
    # 2 requests per image plus 0.1 listing pages: 50 requests/s admit 50 / 2.1
    assert found["API Gateway stage throttle (ApiThrottleRate)"].admits == pytest.approx(50 / 2.1)
    # 3 WCU per image over 32 shards: a 1,000 WCU partition admits 32,000 / 3
    assert found["by_created partition image#<n>"].admits == pytest.approx(32_000 / 3)
    assert found["by_created partition image#<n>"].load(1_000) == pytest.approx(3 / 32)
    # two PUTs per image into each folder: 3,500 / 2
    assert found["S3 public/<folder>/ PUT (renditions)"].admits == pytest.approx(1_750)
    # in flight: a 1 s window plus 5 images of 0.25 s
    assert found["SQS in-flight messages"].admits == pytest.approx(120_000 / 2.25)
    # content-versioned keys: nothing to invalidate at any rate
    assert math.isinf(found["CloudFront invalidations"].admits)
    # one page per ten images reads 4 items of 1.2 KB from each shard: 4.8 KB is 1 RCU
    assert found["listing reads, each shard partition"].per_image == pytest.approx(0.1)


def test_the_first_bottleneck_is_the_lowest_ceiling() -> None:
    found = parts(FACTS, SETTINGS, TRAFFIC)
    first = capacity.bottleneck(found)
    assert first.name == "API Gateway stage throttle (ApiThrottleRate)"
    assert capacity.admitted(found) == min(p.admits for p in found)
    # raising that throttle moves the bottleneck to the processor
    raised = capacity.bottleneck(parts(FACTS, replace(SETTINGS, api_rate=5_000), TRAFFIC))
    assert raised.name == "processor concurrency (MaxConcurrency x queues)"


def test_more_shards_means_less_per_partition() -> None:
    few = by_name(parts(FACTS, replace(SETTINGS, list_shards=8), TRAFFIC))
    many = by_name(parts(FACTS, replace(SETTINGS, list_shards=64), TRAFFIC))
    key = "by_state partition processing#<n>"
    assert few[key].load(1_000) == pytest.approx(8 * many[key].load(1_000))


@pytest.fixture(scope="module")
def measured() -> tuple[Facts, dict[str, str]]:
    return capacity.load_inputs()


def test_the_targets_hold_on_measured_facts(measured: tuple[Facts, dict[str, str]]) -> None:
    facts, params = measured
    defaults, raised, ten_k = capacity.settings_for(params)
    # The defaults have a ceiling, named.
    assert 0 < capacity.admitted(parts(facts, defaults)) < 1_000
    # 1,000 images/s with template parameters alone, each within its declared bounds.
    assert capacity.admitted(parts(facts, raised)) >= 1_000
    declared = tpl.load_template()["Parameters"]
    for change in raised.changes:
        name, _, value = change.partition("=")
        bounds = declared[name]
        assert bounds.get("MinValue", -math.inf) <= float(value) <= bounds.get("MaxValue", math.inf)
    same_quotas = replace(
        raised, max_concurrency=defaults.max_concurrency, api_rate=defaults.api_rate
    )
    assert replace(same_quotas, label=defaults.label, changes=()) == defaults
    # No partition of any table or index above a tenth of its limit at 1,000 images/s.
    partitions = [p for p in parts(facts, raised) if p.partition]
    assert partitions and all(p.load(1_000) <= capacity.TENTH for p in partitions)
    # 10,000 images/s once the named changes are made.
    assert capacity.admitted(parts(facts, ten_k)) >= 10_000 and ten_k.changes


def test_the_document_is_what_the_model_says(measured: tuple[Facts, dict[str, str]]) -> None:
    facts, params = measured
    assert capacity.DOC.read_text(encoding="utf-8") == capacity.render(facts, params), (
        "docs/capacity.md is stale: run `python -m benchmarks.capacity`"
    )


def test_cost_lines_by_hand() -> None:
    prices = capacity.Prices()
    lines = {c.part: c for c in capacity.cost_lines(FACTS, SETTINGS, 0.002, TRAFFIC, prices)}
    # 10 WCU per image: 10,000 write units per 1,000 images at $0.625 a million
    assert lines["DynamoDB writes"].usd_per_1000 == pytest.approx(10_000 * 0.625 / 1e6)
    # one event and the outbox's clearing write (1 WCU) per image
    assert lines["completion events"].usd_per_1000 == pytest.approx(1000 * (1.00 + 0.625) / 1e6)
    # 4 rendition files per image: 4,000 PUTs at $0.005 a thousand
    assert lines["S3 PUT of the renditions"].usd_per_1000 == pytest.approx(4 * 0.005)
    # the paced feed: one LIST per 1,000 keys, one SendMessageBatch per 10
    paced = lines["backfill: listing and queueing"]
    assert paced.feed == "paced"
    assert paced.usd_per_1000 == pytest.approx(0.005 / 1000 + 100 * 0.40 / 1e6)
    every = sum(c.usd_per_1000 for c in lines.values() if not c.feed)
    assert capacity.cost_per_1000(list(lines.values())) == pytest.approx(every)
    assert capacity.cost_per_1000(list(lines.values()), "paced") == pytest.approx(
        every + paced.usd_per_1000
    )


def test_a_backfill_is_bounded_by_the_pipeline_less_the_api_and_by_its_feeder() -> None:
    found = capacity.backfill_parts(FACTS, SETTINGS, TRAFFIC)
    assert not [p for p in found if p.name.startswith("API")]
    feeder = found[-1]
    assert feeder.admits == pytest.approx(10 * 1000 / TRAFFIC.feed_round_trip_ms)
    # the processor's 40 images/s (by hand above) is the first bottleneck here
    assert capacity.bottleneck(found).admits == pytest.approx(40)


def test_a_size_made_on_demand_by_hand() -> None:
    prices = capacity.Prices()
    traffic = Traffic(on_demand_ms=500.0)
    lines = {c.part: c.usd_per_1000 for c in capacity.on_demand_lines(FACTS, SETTINGS, traffic)}
    # 1,000 invocations of 0.5 s at 1769 MB, and their requests
    gb_s = 1000 * 0.5 * 1769 / 1024
    expected = gb_s * prices.lambda_arm64_gb_s + 1000 / 1e6 * prices.lambda_requests_per_million
    assert math.isclose(lines["on-demand Lambda"], expected)
    assert math.isclose(lines["S3 GETs"], 2 * prices.s3_get_per_1000)
    assert math.isclose(lines["S3 PUT of the size"], prices.s3_put_per_1000)
    # a 1,200 B item: 1 RCU (consistent), 2 WCU for the claim, 2 x 2 for the listing and index
    ddb = 1000 / 1e6 * (1 * prices.ddb_read_per_million + 6 * prices.ddb_write_per_million)
    assert math.isclose(lines["DynamoDB"], ddb)
    found = by_name(capacity.on_demand_parts(FACTS, SETTINGS, traffic))
    assert found["on-demand function (account concurrency)"].admits == 1_000 / 0.5
    assert found["DynamoDB: one image's item (many sizes of one image at once)"].admits == 250


def test_invalidation_paths_cost_past_the_free_thousand() -> None:
    assert capacity.invalidation_usd(1_000) == 0
    assert capacity.invalidation_usd(1_001) == pytest.approx(0.005)
    # 50,000 deleted images of 4 rendition files each: 200,000 exact paths.
    assert capacity.invalidation_usd(200_000) == pytest.approx(995.0)


def test_a_bulk_delete_costs_a_flush_per_window_by_hand() -> None:
    flush = {"rate": 10, "window_s": 60, "bound": 5, "per_image": 6, "max_exact": 500}
    # 50,000 deletes at 10/s last 5,000 s: 83 full windows of 600 deletes (3,600 exact paths
    # each: folded to 5), and a last one of 200 deletes (1,200 paths: folded too)
    assert capacity.flushed_paths(50_000, **flush) == 84 * 5
    assert capacity.invalidation_usd(84 * 5) == 0
    # one delete is one flush of its exact paths; 80 deletes stay exact (480 paths)
    assert capacity.flushed_paths(1, **flush) == 6
    assert capacity.flushed_paths(80, **flush) == 480
    # a last window small enough to stay exact: 650 deletes = 600 folded + 50 exact
    assert capacity.flushed_paths(650, **flush) == 5 + 300
    # a longer window, fewer flushes
    assert capacity.flushed_paths(50_000, **(flush | {"window_s": 300})) == 17 * 5
