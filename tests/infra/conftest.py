"""Shared ground of the deployment tests: the template, fake AWS credentials, moto's subset."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import template as tpl
from tests.conftest import FAKE_AWS_ENV

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "processor": ROOT / "docker" / "processor.Dockerfile",
    "api": ROOT / "docker" / "api.Dockerfile",
}
ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "imgpipe"

# What moto's CloudFormation can create from the template (queues, table, topic,
# bucket), plus what it also handles here: the processor function, its role, log group and
# event source mapping. Anything that refers to something else (CloudFront, the HTTP API) is
# left out by subset_template.
MOTO_TYPES = (
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::SNS::Topic",
    "AWS::S3::Bucket",
    "AWS::Lambda::Function",
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::Lambda::EventSourceMapping",
)

# Resources moto cannot create whose Ref a created one uses: a parameter stands in for each.
# moto's EventBus answers its Ref with an object, not the bus's name: a stand-in too.
MOTO_STAND_INS = {"Distribution": "EDFDVBD6EXAMPLE", "EventBus": "imgpipe-images"}

# Stand-ins for what CloudFormation would resolve, shaped like the real values.
FAKE_REFS: dict[str, Any] = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "Bucket": f"{STACK}-{ACCOUNT}-{REGION}",
    "Table": f"{STACK}-Table-ABC123",
    "Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-Queue-ABC123",
    "DeadLetterQueue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-DeadLetterQueue-X",
    "InvalidationQueue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-Invalidations-X",
    "Distribution": MOTO_STAND_INS["Distribution"],
    "Distribution.DomainName": "d111111abcdef8.cloudfront.net",
    "CursorSecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:CursorSecret-AbCdEf",
    "ProcessorImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{STACK}/processor:abc1234",
    "ApiImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{STACK}/api:abc1234",
    "AlertEmail": "ops@example.com",
    "EventBus": MOTO_STAND_INS["EventBus"],
    "EventBus.Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{STACK}-images",
    "ProcessorFunction.Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-processor",
}


def tool(name: str) -> str | None:
    """A command-line tool from the venv (next to this Python) or else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return tpl.load_template()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region before any client exists; no profile from the machine."""
    for key, value in {**FAKE_AWS_ENV, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "IMGPIPE_ALERT_EMAIL", "IMGPIPE_STACK_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
