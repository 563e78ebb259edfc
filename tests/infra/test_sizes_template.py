"""The template's side of sizes made on demand (docs/sizes.md), read structurally: the origin
group and its failover codes, OAC on the function URL, who may call it, what the function
runs and may touch, and its alarms. cfn-lint checks the same template (test_lint.py)."""

from __future__ import annotations

from typing import Any

import pytest

from infra import template as tpl
from processor.core.sizes import FOLDER
from tests.infra.test_wiring import BUCKET_ARN, SYMBOLS, TABLE_ARN, grants, props

pytestmark = pytest.mark.unit


def distribution(template: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = props(template, "Distribution")["DistributionConfig"]
    return config


def test_sizes_go_to_an_origin_group_s3_first_then_the_function(template: dict[str, Any]) -> None:
    config = distribution(template)
    origins = {o["Id"]: o for o in config["Origins"]}
    (group,) = config["OriginGroups"]["Items"]
    assert config["OriginGroups"]["Quantity"] == 1
    members = [m["OriginId"] for m in group["Members"]["Items"]]
    assert group["Members"]["Quantity"] == len(members) == 2
    first, second = (origins[m] for m in members)
    assert "S3OriginConfig" in first and first["OriginPath"] == "/public"
    assert "CustomOriginConfig" in second
    # S3 without ListBucket answers a missing key 403: both codes fail over, nothing else
    criteria = group["FailoverCriteria"]["StatusCodes"]
    assert sorted(criteria["Items"]) == [403, 404] and criteria["Quantity"] == 2
    (behaviour,) = [b for b in config["CacheBehaviors"] if b["TargetOriginId"] == group["Id"]]
    assert behaviour["PathPattern"] == f"/{FOLDER}/*"
    # an origin group serves reads only; the same cache and headers as every rendition
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ViewerProtocolPolicy"] == "https-only"
    default = config["DefaultCacheBehavior"]
    assert behaviour["CachePolicyId"] == default["CachePolicyId"]
    assert behaviour["ResponseHeadersPolicyId"] == default["ResponseHeadersPolicyId"]
    # the cache key stays the path: no query string, header or cookie (no Accept negotiation)
    policy = props(template, "CachePolicy")["CachePolicyConfig"]
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}


def test_the_function_url_is_reached_through_oac_with_iam_auth(template: dict[str, Any]) -> None:
    config = distribution(template)
    (origin,) = [o for o in config["Origins"] if "CustomOriginConfig" in o]
    assert tpl.references(origin["DomainName"]) == {"OnDemandUrl"}
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert tpl.references(origin["OriginAccessControlId"]) == {"OnDemandAccessControl"}
    oac = props(template, "OnDemandAccessControl")["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "lambda"
    assert (oac["SigningBehavior"], oac["SigningProtocol"]) == ("always", "sigv4")
    url = props(template, "OnDemandUrl")
    assert url["AuthType"] == "AWS_IAM"
    assert tpl.references(url["TargetFunctionArn"]) == {"OnDemandFunction"}


def test_only_this_distribution_may_call_the_function(template: dict[str, Any]) -> None:
    permissions = [
        props(template, name)
        for name in tpl.resources(template, "AWS::Lambda::Permission")
        if tpl.references(props(template, name)["FunctionName"]) == {"OnDemandFunction"}
    ]
    assert {p["Action"] for p in permissions} == {
        "lambda:InvokeFunctionUrl",
        "lambda:InvokeFunction",
    }
    for permission in permissions:
        assert permission["Principal"] == "cloudfront.amazonaws.com"
        source = tpl.resolve(permission["SourceArn"], SYMBOLS, template)
        assert source.endswith(":distribution/DISTRIBUTION")
    (url,) = [p for p in permissions if p["Action"] == "lambda:InvokeFunctionUrl"]
    assert url["FunctionUrlAuthType"] == "AWS_IAM"


def test_the_function_runs_the_processor_image_with_the_on_demand_handler(
    template: dict[str, Any],
) -> None:
    function = props(template, "OnDemandFunction")
    processor = props(template, "ProcessorFunction")
    assert function["Code"] == processor["Code"] == {"ImageUri": {"Ref": "ProcessorImageUri"}}
    assert function["ImageConfig"]["Command"] == ["processor.entrypoints.ondemand.lambda_handler"]
    assert function["MemorySize"] == processor["MemorySize"]
    # CloudFront waits 30 s for an origin: the function answers within it
    assert function["Timeout"] <= 30
    env = tpl.function_env("OnDemandFunction", template=template)
    assert float(env["IMGPIPE_IMAGE_TIME_BUDGET_S"]) < function["Timeout"]
    processor_env = tpl.function_env("processor", template=template)
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == processor_env["POWERTOOLS_METRICS_NAMESPACE"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "ondemand"


def test_the_function_writes_only_sizes_and_claims_on_the_table(template: dict[str, Any]) -> None:
    granted = grants(template, "OnDemandRole")
    writes = {(a, r) for a, r in granted if a in ("s3:PutObject", "s3:DeleteObject")}
    assert writes == {
        ("s3:PutObject", f"{BUCKET_ARN}/public/{FOLDER}/*"),
        ("s3:DeleteObject", f"{BUCKET_ARN}/public/{FOLDER}/*"),
    }
    table = {a for a, r in granted if r == TABLE_ARN}
    assert table == {"dynamodb:GetItem", "dynamodb:UpdateItem"}


def test_errors_and_throttles_of_sizes_are_alarmed(template: dict[str, Any]) -> None:
    errors = props(template, "OnDemandErrorsAlarm")
    metrics = {q["Id"]: q["MetricStat"]["Metric"] for q in errors["Metrics"] if "MetricStat" in q}
    assert {m["MetricName"] for m in metrics.values()} == {"SizeErrors", "Errors"}
    throttled = props(template, "OnDemandThrottlesAlarm")
    assert throttled["MetricName"] == "SizesThrottled"
    namespace = tpl.function_env("OnDemandFunction", template=template)[
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    assert throttled["Namespace"] == namespace
    for alarm in (errors, throttled):
        assert tpl.references(alarm["AlarmActions"]) == {"AlertTopic"}
