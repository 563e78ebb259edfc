"""Parsing what arrives on the queue: S3 notifications, test events, our own messages."""

from __future__ import annotations

import json

import pytest

from processor.core.events import (
    SEQUENCER_WIDTH,
    Kind,
    MalformedMessage,
    compare_sequencers,
    normalize_sequencer,
    parse_body,
    parse_message,
)
from processor.core.messages import reprocess_message
from tests.lambda_runtime import load_event

pytestmark = pytest.mark.unit


def test_direct_s3_put_event_decodes_the_key():
    # GIVEN a recorded S3 event for "raw/holiday 2024/café + friends.jpg", URL-encoded by S3
    (event,) = parse_message(load_event("s3_object_created_put"))
    # THEN "+" is a space, %2B a plus, %C3%A9 an é
    assert event.key == "raw/holiday 2024/café + friends.jpg"
    assert event.kind is Kind.created
    assert event.bucket == "imgpipe-test-bucket"
    assert event.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert event.size == 1024
    assert event.name == "ObjectCreated:Put"
    assert event.sequencer == "0055AED6DCD90281E5".ljust(SEQUENCER_WIDTH, "0")
    assert not event.force


def test_delete_event():
    (event,) = parse_message(load_event("s3_object_removed_delete"))
    assert event.kind is Kind.removed
    assert event.key == "raw/holiday 2024/café + friends.jpg"
    assert event.size is None and event.etag is None


def test_sqs_batch_bodies():
    batch = load_event("sqs_s3_batch")
    put, test_event, reprocess = (parse_body(r["body"]) for r in batch["Records"])
    assert [e.key for e in put] == ["raw/deep/a/b/c/d/e/photo 1.jpg"]
    assert test_event == []  # s3:TestEvent is ignored
    (again,) = reprocess
    # our own message carries the key as plain text: "+" stays a plus
    assert again.key == "raw/already there+kept.png"
    assert again.kind is Kind.reprocess and again.force and again.sequencer is None


def test_s3_test_event_is_ignored():
    assert parse_message(load_event("s3_test_event")) == []


def test_reprocess_message_round_trip():
    (event,) = parse_body(reprocess_message("b-1", "raw/ü ber+%2B.jpg"))
    assert (event.bucket, event.key, event.kind) == ("b-1", "raw/ü ber+%2B.jpg", Kind.reprocess)


def test_sns_wrapped_notification():
    inner = json.dumps(load_event("s3_object_created_put"))
    body = json.dumps({"Type": "Notification", "MessageId": "x", "Message": inner})
    (event,) = parse_body(body)
    assert event.key == "raw/holiday 2024/café + friends.jpg"


def test_events_that_do_not_change_bytes_are_ignored():
    event = load_event("s3_object_created_put")
    event["Records"][0]["eventName"] = "ObjectTagging:Put"
    assert parse_message(event) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        json.dumps({"type": "imgpipe.reprocess", "bucket": "b"}),
    ],
)
def test_malformed_bodies_are_refused(body):
    with pytest.raises(MalformedMessage) as raised:
        parse_body(body)
    assert raised.value.code == "malformed_message" and not raised.value.retryable


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", 0),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6", -1),
        ("0055AED6DCD90281F0", "0055AED6DCD90281E5", 1),
        # different lengths: the shorter is right-padded with zeros before comparing
        ("0055AED6DCD9028", "0055AED6DCD90281", -1),
        ("0055AED6DCD90290", "0055AED6DCD902810000", 1),
        ("00ab", "00AB00", 0),
    ],
)
def test_compare_sequencers(a, b, expected):
    assert compare_sequencers(a, b) == expected
    assert compare_sequencers(b, a) == -expected


def test_normalized_sequencers_compare_as_plain_strings():
    # what DynamoDB's condition expression relies on
    pairs = [("0055AED6DCD9028", "0055AED6DCD90281"), ("1", "0FFFFFFFFFFFF"), ("A0", "A")]
    for a, b in pairs:
        na, nb = normalize_sequencer(a), normalize_sequencer(b)
        assert na is not None and nb is not None
        assert ((na > nb) - (na < nb)) == compare_sequencers(a, b)


def test_normalize_rejects_garbage():
    assert normalize_sequencer(None) is None and normalize_sequencer("") is None
    with pytest.raises(MalformedMessage):
        normalize_sequencer("not-hex")
