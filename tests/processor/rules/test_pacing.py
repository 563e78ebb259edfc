"""Batches that never fail together: the pure pacing rule (the handler applying it is
tested in test_handler.py)."""

from __future__ import annotations

import pytest

from processor.rules.pacing import MIN_BUDGET_S, image_budget, most_received_first, runs_alone

pytestmark = pytest.mark.unit

JPEG = b"\xff\xd8\xff not really a jpeg"


# --- the rule ----------------------------------------------------------------------------


def test_an_image_starts_only_with_its_whole_budget_left() -> None:
    rule = {"budget_s": 30.0, "reserve_s": 10.0}
    assert image_budget(remaining_s=100, started=3, **rule) == 30.0
    assert image_budget(remaining_s=40, started=1, **rule) == 30.0
    assert image_budget(remaining_s=39.9, started=1, **rule) is None  # comes back later


def test_the_first_image_of_an_invocation_always_starts_with_what_is_left() -> None:
    # a function whose timeout is shorter than budget + reserve would otherwise put every
    # image off, forever, until the dead-letter queue
    assert image_budget(remaining_s=25, started=0, budget_s=30, reserve_s=10) == 15
    assert image_budget(remaining_s=5, started=0, budget_s=30, reserve_s=10) == MIN_BUDGET_S


def test_messages_received_most_often_go_first() -> None:
    records = [
        {"messageId": "a", "attributes": {"ApproximateReceiveCount": "1"}},
        {"messageId": "b", "attributes": {"ApproximateReceiveCount": "2"}},
        {"messageId": "c", "attributes": {}},
        {"messageId": "d", "attributes": {"ApproximateReceiveCount": "2"}},
    ]
    assert [r["messageId"] for r in most_received_first(records)] == ["b", "d", "a", "c"]


def test_a_message_that_comes_back_runs_alone_and_goes_first() -> None:
    retry = {"stringValue": "1", "dataType": "String"}
    records = [
        {"messageId": "fresh", "attributes": {"ApproximateReceiveCount": "1"}},
        {
            "messageId": "starved",
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {"imgpipe-tries": retry},
        },
        {"messageId": "back", "attributes": {"ApproximateReceiveCount": "2"}},
        {"messageId": "other", "attributes": {}, "messageAttributes": {"kind": retry}},
    ]
    assert [runs_alone(r) for r in records] == [False, True, True, False]
    assert [r["messageId"] for r in most_received_first(records)] == [
        "back",
        "starved",
        "fresh",
        "other",
    ]
