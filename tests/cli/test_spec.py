"""What the local stack reads from infra/template.yaml: names, settings, parameters and the
functions' environment, resolved without creating anything."""

from __future__ import annotations

import pytest

from cli.local.spec import load_spec
from infra import template as cfn

pytestmark = pytest.mark.unit

ORIGIN = "http://127.0.0.1:8000"


def test_spec_takes_names_and_settings_from_the_template() -> None:
    spec = load_spec(stack_name="imgpipe-local", account="123456789012", region="eu-west-1")
    template = cfn.load_template()
    assert spec.bucket == "imgpipe-local-123456789012-eu-west-1"
    assert spec.queue == cfn.queue_settings(template)
    assert spec.queue.max_receive_count >= 1
    assert spec.notification.prefix == "raw/"
    assert set(spec.notification.events) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert spec.table == cfn.table_definition(template)
    assert {i["IndexName"] for i in spec.table["GlobalSecondaryIndexes"]} == {
        "by_created",
        "by_state",
        "by_sha256",
        "by_uploader",
    }
    assert spec.mapping.report_batch_item_failures
    assert spec.mapping.batch_size == int(cfn.parameter_defaults(template)["BatchSize"])
    assert spec.processor.handler == "processor.entrypoints.handler.lambda_handler"
    assert spec.function_name == "imgpipe-local-processor"


def test_parameters_override_defaults_and_must_exist() -> None:
    spec = load_spec(parameters={"CorsAllowedOrigin": ORIGIN, "BatchSize": "2"})
    assert spec.cors_rules[0]["AllowedOrigins"] == [ORIGIN]
    assert spec.cors_rules[0]["ExposeHeaders"] == ["ETag"]
    assert spec.mapping.batch_size == 2
    with pytest.raises(ValueError, match="NoSuchParameter"):
        load_spec(parameters={"NoSuchParameter": "x"})


def test_function_environment_resolves_what_exists_locally() -> None:
    spec = load_spec()
    env = spec.environment(spec.processor, queue_url="http://q", dlq_url="http://d")
    assert env["IMGPIPE_BUCKET"] == spec.bucket
    assert env["IMGPIPE_TABLE"] == spec.table_name
    assert env["IMGPIPE_QUEUE_URL"] == "http://q"
    assert env["IMGPIPE_RAW_PREFIX"] == "raw/"
    api = spec.environment(spec.api, queue_url="http://q", dlq_url="http://d")
    # CloudFront's domain and the Secrets Manager reference exist only in AWS
    assert "IMGPIPE_CDN_BASE_URL" not in api
    assert "IMGPIPE_CURSOR_SECRET" not in api
