"""`imgpipe local --events`: the stack prints each completion event its EventBridge receives."""

from __future__ import annotations

import json
import time

import pytest

from tests.cli.backfill_world import tiny_image
from tests.cli.conftest import StackProcess, aws_client

pytestmark = pytest.mark.e2e


def test_imgpipe_local_prints_the_events_it_publishes(fake_aws: None) -> None:
    stack = StackProcess.start("--events", "--concurrency", "1")
    try:
        aws_client("s3", stack.aws).put_object(
            Bucket=stack.bucket, Key="raw/e2e/cat.png", Body=tiny_image(3)
        )
        deadline = time.monotonic() + 60
        printed: list[dict] = []
        while time.monotonic() < deadline and not printed:
            printed = [
                json.loads(line.removeprefix("event "))
                for line in list(stack.lines)
                if line.startswith("event {")
            ]
            time.sleep(0.2)
        (event,) = printed
        assert (event["source"], event["detail-type"]) == ("imgpipe", "Image Processed")
        assert event["detail"]["source_key"] == "raw/e2e/cat.png"
        assert event["detail"]["renditions"][0]["url"].startswith(stack.cdn)
    finally:
        assert stack.stop() == 0
