"""api.handler.lambda_handler with its real adapters, built from the environment, against moto."""

from __future__ import annotations

import pytest

from tests.api.gateway import RECORD, invoke
from tests.lambda_runtime import load_event

pytestmark = pytest.mark.integration


def test_real_adapters_from_the_environment(gateway_env: None, monkeypatch) -> None:
    """No overrides: the handler builds its DynamoDB repository from the settings (moto)."""
    from moto import mock_aws

    from processor.aws.dynamo import serialize, to_item
    from tests.aws import client, create_table

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        dynamodb = client("dynamodb", None)
        create_table(dynamodb, "imgpipe-images")
        dynamodb.put_item(TableName="imgpipe-images", Item=serialize(to_item(RECORD)))
        status, _, body = invoke(load_event("apigw_get_image_unknown"))
        assert status == 404
        event = load_event("apigw_get_image")
        del event["headers"]["if-none-match"]
        status, _, body = invoke(event)
    assert status == 200 and body["id"] == RECORD.id and body["width"] == 4000
