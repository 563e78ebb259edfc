"""What a first real deploy meets and neither cfn-lint nor moto shows, checked from the template.

Each test reads the declarations (and, where the template must agree with the code, the code
itself): deletion policies of stateful resources, account-wide names, the browser's CORS
preflight against the HTTP API's routes, alarms that stay silent, and the metric names the
processor really emits.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra import template as tpl
from infra.deploy import preflight
from tests.infra.conftest import FAKE_REFS, ROOT

pytestmark = pytest.mark.unit


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


# ------------------------------------------------------------------ recoverable creates ------

STATEFUL = ("AWS::S3::Bucket", "AWS::DynamoDB::Table")


def test_stateful_resources_go_with_a_failed_create_and_stay_afterwards(
    template: dict[str, Any],
) -> None:
    stateful = {k: r for k, r in template["Resources"].items() if r["Type"] in STATEFUL}
    assert set(stateful) >= {"Bucket", "Table"}
    for logical_id, res in stateful.items():
        # Retain would keep them when the first create rolls back, and the bucket's fixed name
        # would then fail every retry ("already exists").
        assert res["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
        assert res["UpdateReplacePolicy"] == "Retain", logical_id
    plain_retain = [
        k for k, r in template["Resources"].items() if r.get("DeletionPolicy") == "Retain"
    ]
    assert plain_retain == []


# Where each account-wide (not regional) resource type keeps its name.
ACCOUNT_WIDE_NAMES = {
    "AWS::CloudFront::OriginAccessControl": ("OriginAccessControlConfig", "Name"),
    "AWS::CloudFront::CachePolicy": ("CachePolicyConfig", "Name"),
    "AWS::CloudFront::ResponseHeadersPolicy": ("ResponseHeadersPolicyConfig", "Name"),
    "AWS::CloudFront::OriginRequestPolicy": ("OriginRequestPolicyConfig", "Name"),
    "AWS::CloudFront::Function": ("Name",),
    "AWS::CloudFront::KeyGroup": ("KeyGroupConfig", "Name"),
    "AWS::CloudFront::PublicKey": ("PublicKeyConfig", "Name"),
    "AWS::CloudWatch::Dashboard": ("DashboardName",),
    "AWS::IAM::Role": ("RoleName",),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName",),
    "AWS::IAM::User": ("UserName",),
    "AWS::S3::Bucket": ("BucketName",),
}


def _name(res: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = res.get("Properties", {})
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def test_account_wide_names_differ_between_regions(template: dict[str, Any]) -> None:
    named = 0
    for logical_id, res in template["Resources"].items():
        path = ACCOUNT_WIDE_NAMES.get(res["Type"])
        if path is None or _name(res, path) is None:
            continue  # regional, or unnamed (CloudFormation makes a unique name)
        named += 1
        names = {
            tpl.resolve(_name(res, path), {**FAKE_REFS, "AWS::Region": region}, template)
            for region in ("us-east-1", "eu-west-1")
        }
        assert len(names) == 2, f"{logical_id}: the same name in two regions: {names}"
    assert named >= 5  # OAC, two CloudFront policies, the dashboard, the bucket


# ------------------------------------------------------------------ browsers ---------------


def _route_pattern(path: str) -> re.Pattern[str]:
    """An HTTP API route path as a regex: {name} is one segment, {name+} the rest."""
    parts = []
    for segment in path.strip("/").split("/"):
        if segment.endswith("+}"):
            parts.append(".+")
        elif segment.startswith("{"):
            parts.append("[^/]+")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


def select_route(route_keys: list[str], method: str, path: str) -> str:
    """API Gateway's choice for a request: the most specific matching route, else $default.

    Most specific: no greedy variable beats a greedy one, more literal segments beat fewer, a
    named method beats ANY (HTTP API route evaluation, "Working with routes").
    """
    best: tuple[tuple[int, int, int], str] | None = None
    for key in route_keys:
        if key == "$default":
            continue
        route_method, _, route_path = key.partition(" ")
        if route_method not in (method, "ANY") or not _route_pattern(route_path).match(path):
            continue
        segments = route_path.strip("/").split("/")
        rank = (
            0 if route_path.endswith("+}") else 1,
            sum(1 for s in segments if not s.startswith("{")),
            1 if route_method == method else 0,
        )
        if best is None or rank > best[0]:
            best = (rank, key)
    return best[1] if best else "$default"


def test_route_selection_model_prefers_the_specific_route() -> None:
    keys = ["GET /{proxy+}", "POST /uploads", "POST /uploads/{proxy+}", "$default"]
    assert select_route(keys, "POST", "/uploads") == "POST /uploads"
    assert select_route(keys, "POST", "/uploads/abc/parts") == "POST /uploads/{proxy+}"
    assert select_route(keys, "GET", "/images/1") == "GET /{proxy+}"
    assert select_route(keys, "OPTIONS", "/images/1") == "$default"
    assert select_route(keys, "GET", "/") == "$default"


def _browser_requests() -> Iterator[tuple[str, str]]:
    """Every (method, path) the deployed app answers, a path variable filled with a value:
    the OpenAPI document's operations and the documentation pages themselves."""
    from starlette.routing import Route

    from api.app import create_app
    from api.settings import ApiSettings

    settings = ApiSettings(
        bucket="imgpipe-bucket",
        table="imgpipe-table",
        cdn_base_url="https://d111111abcdef8.cloudfront.net",
        auth_mode="gateway",
        cors_origins=["https://app.example.com"],
        cursor_secret="x" * 48,
    )
    app = create_app(settings, behind_gateway=True)  # as the Lambda handler builds it
    operations = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ]
    operations += [
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]
    for method, path in operations:
        yield method, re.sub(r"\{[^}]+\}", "abc123", path)


@pytest.mark.parametrize(
    ("api", "credential", "readers", "writers"),
    [
        # The key's API: anyone reads (the read authoriser says whether the key came along).
        ("HttpApi", "x-api-key", ("CUSTOM", "ReadAuthorizer"), ("CUSTOM", "ApiKeyAuthorizer")),
        # The signed-in users' API (JwtIssuer set): every request needs a token.
        ("BrowserApi", "authorization", ("JWT", "JwtAuthorizer"), ("JWT", "JwtAuthorizer")),
    ],
)
def test_every_browser_request_gets_its_preflight_answered_without_credentials(
    template: dict[str, Any],
    aws_env: None,
    api: str,
    credential: str,
    readers: tuple[str, str],
    writers: tuple[str, str],
) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in tpl.resources(template, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == {"Ref": api}
    }
    cors = props(template, api)["CorsConfiguration"]
    requests = sorted(set(_browser_requests()))
    assert {m for m, _ in requests} >= {"GET", "POST", "DELETE"}
    for method, path in requests:
        # The credential (x-api-key, Authorization) and If-None-Match (conditional reads) are
        # not CORS-safelisted: the browser first sends OPTIONS, without them.
        chosen = select_route(list(routes), "OPTIONS", path)
        assert routes[chosen]["AuthorizationType"] == "NONE", (method, path, chosen)
        assert routes[chosen]["Target"], chosen  # a route without integration answers 404
        assert method in cors["AllowMethods"], method
    assert {credential, "if-none-match", "content-type"} <= set(cors["AllowHeaders"])
    # And the requests themselves reach their authoriser.
    for method, path in requests:
        chosen = select_route(list(routes), method, path)
        kind, authoriser = readers if method == "GET" else writers
        assert routes[chosen]["AuthorizationType"] == kind, (method, path, chosen)
        assert routes[chosen]["AuthorizerId"] == {"Ref": authoriser}, (method, path, chosen)


# ------------------------------------------------------------------ alarms -----------------


def test_throttles_alarm_fills_idle_series_and_covers_every_function(
    template: dict[str, Any],
) -> None:
    queries = props(template, "ThrottlesAlarm")["Metrics"]
    (total,) = [q for q in queries if q.get("ReturnData", True)]
    stats = {q["Id"]: q["MetricStat"]["Metric"] for q in queries if "MetricStat" in q}
    watched = {tpl.references(m["Dimensions"][0]["Value"]).pop() for m in stats.values()}
    assert watched == set(tpl.resources(template, "AWS::Lambda::Function"))
    assert {m["MetricName"] for m in stats.values()} == {"Throttles"}
    # Every term is filled: one idle function (no data) must not make the sum missing.
    terms = [t.strip() for t in total["Expression"].split("+")]
    assert sorted(terms) == sorted(f"FILL({i}, 0)" for i in stats), total["Expression"]


def _insights(alarm: dict[str, Any]) -> str:
    (query,) = [q for q in alarm["Properties"]["Metrics"] if q.get("ReturnData", True)]
    expression = query["Expression"]
    return str(expression["Fn::Sub"] if isinstance(expression, dict) else expression)


@pytest.mark.parametrize(
    "metric",
    ["ImagesFailed", "RetriedErrors", "MalformedMessages", "ImagesOverLimit", "ImagesTimedOut"],
)
def test_processor_outcomes_are_alarmed_over_every_dimension(
    template: dict[str, Any], metric: str
) -> None:
    alarms = tpl.resources(template, "AWS::CloudWatch::Alarm")
    found = [a for a in alarms.values() if "Metrics" in a["Properties"] and metric in _insights(a)]
    (alarm,) = found
    # Metrics Insights sums every error code, including codes added later.
    assert _insights(alarm) == f'SELECT SUM({metric}) FROM "{STACK_NAMESPACE}"'
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_processor_errors_alarm_does_not_promise_whole_batch_failures(
    template: dict[str, Any],
) -> None:
    # A batch whose every message failed returns normally (every message in
    # batchItemFailures), so Lambda's Errors never counts it.
    from processor.entrypoints.batch import run_batch

    def fail(record: Any, turn: Any) -> None:
        raise RuntimeError("every message fails")

    records = [{"messageId": "a"}, {"messageId": "b"}]
    for workers in (1, 2):
        response = run_batch(records, fail, workers=workers)
        assert response == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}
    description = props(template, "ProcessorErrorsAlarm")["AlarmDescription"]
    assert "batch failed" not in description
    assert "whole" in description


# ------------------------------------------------------------------ the code's metrics ------


def _emitted_metrics() -> dict[str, set[str]]:
    """Metric name -> dimension names, from the processor's and API's code (EMF via
    Powertools: ``metrics.add_metric(name=...)``, ``single_metric`` through ``count``)."""
    from processor.entrypoints import outcomes

    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "processor").rglob("*.py")) + sorted((ROOT / "api").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else None
            callee = callee or (node.func.id if isinstance(node.func, ast.Name) else None)
            keywords = {k.arg: k.value for k in node.keywords}
            name: Any = None
            dimensions = {"service"}  # Metrics(service=...) and count's default dimension
            if callee in ("add_metric", "single_metric"):
                name = keywords.get("name")
            elif callee == "count" and node.args:
                name = node.args[0]
                dimension = keywords.get("dimension")
                if isinstance(dimension, ast.Tuple) and isinstance(dimension.elts[0], ast.Constant):
                    dimensions.add(str(dimension.elts[0].value))
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                found.setdefault(name.value, set()).update(dimensions)
    assert outcomes.NAMESPACE == "imgpipe"
    return found


# Each stack's own namespace, so a staging stack neither pages production nor fills its dashboard.
STACK_NAMESPACE = "imgpipe/${AWS::StackName}"


def _template_metric_names(template: dict[str, Any]) -> set[str]:
    """Names of the imgpipe metrics the alarms and the dashboard read."""
    names: set[str] = set()
    for alarm in tpl.resources(template, "AWS::CloudWatch::Alarm").values():
        p = alarm["Properties"]
        assert not str(p.get("Namespace", "AWS/")).startswith("imgpipe"), p
        for query in p.get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric", {})
            assert not str(metric.get("Namespace", "AWS/")).startswith("imgpipe"), metric
            expression = query.get("Expression", "")
            if isinstance(expression, dict):
                expression = expression["Fn::Sub"]
            names |= set(
                re.findall(r'SELECT \w+\((\w+)\) FROM "imgpipe/\$\{AWS::StackName\}"', expression)
            )
            assert "FROM imgpipe" not in expression
    body = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"][0]
    names |= set(
        re.findall(r'Namespace=\\"imgpipe/\$\{AWS::StackName\}\\" MetricName=\\"(\w+)\\"', body)
    )
    return names


def test_alarms_and_dashboard_read_metrics_the_code_emits(template: dict[str, Any]) -> None:
    emitted = _emitted_metrics()
    assert {"ImagesDone", "ImagesFailed", "RetriedErrors", "MalformedMessages"} <= set(emitted)
    read = _template_metric_names(template)
    assert read - set(emitted) == set(), "the template reads metrics nothing emits"
    # Namespace: what the functions are told and what the handler uses.
    for function in ("processor", "api"):
        env = tpl.function_env(function, FAKE_REFS, template)
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == f"imgpipe/{FAKE_REFS['AWS::StackName']}"
        raw = tpl.function_env(function, None, template)
        assert raw["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": STACK_NAMESPACE}
    body = props(template, "Dashboard")["DashboardBody"]["Fn::Sub"][0]
    assert set(re.findall(r'Namespace=\\"([^\\]+)\\"', body)) == {STACK_NAMESPACE}
    queries = [
        q["Expression"]
        for alarm in tpl.resources(template, "AWS::CloudWatch::Alarm").values()
        for q in alarm["Properties"].get("Metrics", [])
        if "Expression" in q and "SELECT" in str(q["Expression"])
    ]
    assert queries and all(STACK_NAMESPACE in q["Fn::Sub"] for q in queries)
    # The per-code views name the dimension the code really sets.
    assert "error_code" in emitted["ImagesFailed"]
    assert "error_code" in emitted["RetriedErrors"]
    assert "ErrorCode" not in json.dumps(props(template, "Dashboard"))


def test_the_processors_failure_metrics_are_on_the_dashboard(template: dict[str, Any]) -> None:
    read = _template_metric_names(template)
    assert {"ImagesFailed", "RetriedErrors", "MalformedMessages"} <= read


# ------------------------------------------------------------------ sizing -----------------


def test_ephemeral_storage_follows_the_upload_limit(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    upload, storage = params["MaxUploadBytes"], params["ProcessorEphemeralStorage"]
    # The default /tmp holds the default upload; the largest upload still fits Lambda's maximum.
    assert storage["Default"] == preflight.ephemeral_storage_mb(upload["Default"])
    assert preflight.ephemeral_storage_mb(upload["MaxValue"]) <= storage["MaxValue"] == 10240
    assert storage["MinValue"] == 512
    with pytest.raises(preflight.DeployError, match="MaxUploadBytes"):
        preflight.ephemeral_storage_mb(upload["MaxValue"] + 1_000_000)
    function = props(template, "ProcessorFunction")
    assert function["EphemeralStorage"] == {"Size": {"Ref": "ProcessorEphemeralStorage"}}
    # The processor refuses what the API presigns beyond: both read the same parameter.
    env = function["Environment"]["Variables"]
    assert env["IMGPIPE_MAX_INPUT_BYTES"] == {"Ref": "MaxUploadBytes"}


@pytest.mark.parametrize(
    ("reserved", "maximum", "allowed"),
    [("0", "10", True), ("10", "10", True), ("5", "10", False), ("20", "10", False)],
)
def test_reserved_concurrency_rule(
    template: dict[str, Any], reserved: str, maximum: str, allowed: bool
) -> None:
    broken = tpl.rule_violations(
        {"ReservedConcurrency": reserved, "MaxConcurrency": maximum}, template
    )
    assert (broken == []) is allowed, broken


def test_deploy_docs_hold_a_valid_policy_with_what_image_functions_need() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```json\n(.*?)\n```", text, flags=re.S)
    policy = json.loads(block)
    assert policy["Version"] == "2012-10-17"
    actions = {
        a
        for s in policy["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # Lambda reads and sets the repository policy of an image function's repository with the
    # deployer's rights; the deploy reads the account's concurrency.
    assert {"ecr:SetRepositoryPolicy", "ecr:GetRepositoryPolicy"} <= actions
    assert "lambda:GetAccountSettings" in actions
    assert "cloudformation:CreateStack" in actions
    for step in ("quota", "CloudFront", "Confirm subscription"):
        assert step in text, step


def test_documented_policy_covers_every_call_the_deploy_makes() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```json\n(.*?)\n```", text, flags=re.S)
    actions = {
        a.lower()
        for s in json.loads(block)["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    for call in sorted(_deploy_calls()):
        service, _, operation = call.partition(":")
        assert f"{service}:{operation}".lower() in actions or f"{service}:*" in actions, call


# IAM actions whose name is not the operation's.
_IAM_ACTION = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
}
_CLIENTS = {"cfn": "cloudformation", "ecr": "ecr", "s3": "s3", "dynamodb": "dynamodb", "sns": "sns"}


def _deploy_calls() -> set[str]:
    """IAM action of each boto3 call the deploy's modules make (their clients by name)."""
    calls = {"cloudformation:DescribeStacks"}  # what the waiters poll
    for path in sorted((ROOT / "infra" / "deploy").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        found = [
            (_CLIENTS[c], m)
            for c, m in re.findall(r"\b(cfn|ecr|s3|dynamodb|sns)\.(\w+)\(", text)
            if m not in ("get_waiter", "get_paginator")
        ]
        found += re.findall(r'client\("(\w+)"\)\.(\w+)\(', text)
        found += [
            ("cloudformation" if "stack" in m else "dynamodb", m)
            for m in re.findall(r'get_paginator\("(\w+)"\)', text)
        ]
        for service, method in found:
            action = f"{service}:{_camel(method)}"
            calls.add(_IAM_ACTION.get(action, action))
    return calls


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def test_the_table_is_encrypted_with_the_aws_owned_key_as_its_comment_says(
    template: dict[str, Any],
) -> None:
    # SSEEnabled: true means the AWS managed KMS key (KMS requests billed), not the free AWS
    # owned key; leaving SSESpecification out (or SSEEnabled false) means the owned key.
    sse = props(template, "Table").get("SSESpecification", {"SSEEnabled": False})
    assert sse.get("SSEEnabled") is False and "KMSMasterKeyId" not in sse
    (skip,) = [
        s
        for s in template["Resources"]["Table"]["Metadata"]["checkov"]["skip"]
        if s["id"] == "CKV_AWS_119"
    ]
    assert "AWS owned key" in skip["comment"]
