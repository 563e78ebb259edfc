"""The flusher Lambda with fakes: a window of the invalidations queue becomes ONE invalidation
planned by the pure rule; a CDN that says later fails the whole batch (its messages come back
after the visibility timeout), an unreadable body is dropped, a broken setup raises."""

from __future__ import annotations

import json
from typing import Any

import pytest

from processor.core.cdn import invalidation_message
from processor.core.errors import AwsServiceError, CdnBusy, TransientError
from processor.core.keys import image_id
from processor.entrypoints import flush
from processor.entrypoints.settings import FlushSettings
from processor.rules.invalidations import MAX_WILDCARDS_PER_FLUSH, covers
from tests.fakes.processor import MemoryCdn
from tests.lambda_runtime import FakeLambdaContext

pytestmark = pytest.mark.unit


def paths_of(n: int) -> list[str]:
    iid = image_id("bucket", f"raw/{n}.jpg")
    return [f"/{f}/{iid}-0123456789.{e}" for f in ("thumbs", "optimized") for e in ("jpg", "webp")]


def event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{n}", "body": body, "eventSource": "aws:sqs"}
            for n, body in enumerate(bodies)
        ]
    }


def handle(cdn: MemoryCdn, evt: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(flush, "invalidator", lambda: cdn)
    monkeypatch.setattr(flush, "settings", lambda: FlushSettings(distribution_id="E1EXAMPLE"))
    return flush.lambda_handler(evt, FakeLambdaContext(function_name="imgpipe-flush"))


def test_one_erase_is_invalidated_with_its_exact_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    cdn = MemoryCdn()
    response = handle(cdn, event(invalidation_message(paths_of(1))), monkeypatch)
    assert response == {"batchItemFailures": []}
    assert cdn.invalidations == [sorted(paths_of(1))]


def test_a_window_of_erases_is_one_invalidation_within_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN 200 erases gathered in one window (one message each; one sent twice)
    bodies = [invalidation_message(paths_of(n)) for n in range(200)]
    cdn = MemoryCdn()
    response = handle(cdn, event(*bodies, bodies[0]), monkeypatch)
    # THEN one invalidation covers every path, with at most the bound's wildcards
    assert response == {"batchItemFailures": []}
    (sent,) = cdn.invalidations
    assert len(sent) <= MAX_WILDCARDS_PER_FLUSH
    assert all(covers(sent, p) for n in range(200) for p in paths_of(n))


@pytest.mark.parametrize("refusal", [CdnBusy, TransientError])
def test_a_cdn_that_says_later_fails_every_message_of_the_batch(
    monkeypatch: pytest.MonkeyPatch, refusal: type[TransientError]
) -> None:
    cdn = MemoryCdn(failures=1, refusal=refusal)
    evt = event(*(invalidation_message(paths_of(n)) for n in range(3)))
    response = handle(cdn, evt, monkeypatch)
    # every message comes back after the visibility timeout: no path is lost
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{n}"} for n in range(3)]}
    assert cdn.invalidations == []
    # ... and the same batch, when it comes back, is invalidated
    assert handle(cdn, evt, monkeypatch) == {"batchItemFailures": []}
    assert len(cdn.invalidations) == 1


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_a_broken_setup_fails_the_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    cdn = MemoryCdn(failures=1, refusal=AwsServiceError)
    with pytest.raises(AwsServiceError):
        handle(cdn, event(invalidation_message(paths_of(1))), monkeypatch)


def test_an_unreadable_body_is_dropped_and_the_rest_flushed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cdn = MemoryCdn()
    bodies = [
        "not json",
        json.dumps({"type": "imgpipe.invalidate", "paths": ["no-slash"]}),
        json.dumps({"type": "imgpipe.reprocess", "bucket": "b", "key": "k"}),
        invalidation_message(paths_of(2)),
    ]
    done = flush.flush(event(*bodies)["Records"], cdn)
    assert (done.messages, done.malformed, done.failed) == (4, 3, ())
    assert cdn.invalidations == [sorted(paths_of(2))]


def test_nothing_to_invalidate_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    cdn = MemoryCdn()
    assert handle(cdn, event(invalidation_message([])), monkeypatch) == {"batchItemFailures": []}
    assert cdn.invalidations == []
