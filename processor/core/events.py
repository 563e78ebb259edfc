"""Queue messages and S3 events in, plain ``ObjectEvent``s out. Pure: no AWS, no I/O.

The processing queue carries three kinds of body:

- an S3 event notification (``{"Records": [{"eventSource": "aws:s3", ...}]}``), as S3 sends it
  to SQS; the same shape arrives without SQS when S3 invokes the function directly;
- S3's ``s3:TestEvent``, sent once when a notification is configured: ignored;
- ``imgpipe.reprocess`` (processor/core/messages.py): derive an existing source again;
- ``imgpipe.backfill``: derive an existing object as if it had been uploaded;
- ``imgpipe.forget``: delete the image of an original read in place (the original stays).
- ``imgpipe.retry``: one object event tried again later, with the tries it has had
  (``retry_message`` writes it).

S3 URL-encodes object keys in events the way HTML forms do (``+`` is a space, ``%2B`` a plus),
so keys are decoded here, once, and nothing downstream sees the encoded form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from processor.core.errors import MalformedMessage
from processor.core.messages import BACKFILL, FORGET, REPROCESS, RETRY

# Sequencers are right-padded with zeros to this width before they are stored or compared,
# so that DynamoDB's plain string comparison orders them (S3 sequencers are ~16-20 chars).
SEQUENCER_WIDTH = 64


class Kind(StrEnum):
    created = "created"
    removed = "removed"
    reprocess = "reprocess"
    backfill = "backfill"  # an existing object, read where it is (processor/core/sources.py)
    forget = "forget"  # an image whose original is read in place is deleted; it stays


# Kinds that come only from this project's own messages: they may name an original outside
# the raw prefix, in a backfill source (S3's own events never may).
OWN_MESSAGE_KINDS = frozenset({Kind.reprocess, Kind.backfill, Kind.forget})
# Kinds that remove an image.
REMOVALS = frozenset({Kind.removed, Kind.forget})


@dataclass(frozen=True)
class ObjectEvent:
    kind: Kind
    bucket: str
    key: str  # decoded: "raw/my cat+dog.jpg", never "raw/my+cat%2Bdog.jpg"
    # Normalised (right-padded, upper-case) S3 sequencer; None when the sender gives none
    # (moto, reprocess messages): ordering then falls back to what S3 holds now.
    sequencer: str | None = None
    etag: str | None = None  # without quotes; lets the reader insist on exactly these bytes
    size: int | None = None  # bytes, as S3 reported it in the event (0 is a real size)
    name: str = ""  # S3's eventName, e.g. "ObjectCreated:Put"; "imgpipe.reprocess" otherwise
    time: str | None = None  # S3's eventTime (ISO 8601)
    # Tries this event has had before this delivery, as its message says (an imgpipe.retry
    # carries them; every other message is a first try). The record counts the rest.
    tries: int = 0
    # S3's versionId of the version this event is about. On ObjectRemoved:Delete in a
    # versioned bucket it names a version deleted for good, not a new delete marker.
    version_id: str | None = None

    @property
    def purges_a_version(self) -> bool:
        """One version (or delete marker) deleted for good, as erasing a deleted image does.

        A delete in a versioned bucket adds a delete marker (ObjectRemoved:DeleteMarkerCreated);
        only DeleteObject with a VersionId sends ObjectRemoved:Delete with that version's id.
        """
        return self.name == "ObjectRemoved:Delete" and self.version_id not in (None, "", "null")

    @property
    def force(self) -> bool:
        """Reprocess means "do it again": no short cut for an already-done, same-content image."""
        return self.kind is Kind.reprocess


def normalize_sequencer(value: str | None) -> str | None:
    """Upper-case hex right-padded with zeros to ``SEQUENCER_WIDTH``; None stays None.

    AWS: "the sequencers can be of different lengths; to compare them, first right pad the
    shorter value with zeros, then do a lexicographical comparison". Padding every value to
    one width makes that comparison a plain string comparison, which DynamoDB can do in a
    condition expression.
    """
    if value is None or value == "":
        return None
    text = value.strip().upper()
    if any(c not in "0123456789ABCDEF" for c in text) or len(text) > SEQUENCER_WIDTH:
        raise MalformedMessage(f"not an S3 sequencer: {value!r}")
    return text.ljust(SEQUENCER_WIDTH, "0")


def compare_sequencers(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b`` (same key only)."""
    width = max(len(a), len(b))
    left, right = a.upper().ljust(width, "0"), b.upper().ljust(width, "0")
    return (left > right) - (left < right)


def parse_body(body: str) -> list[ObjectEvent]:
    """One SQS message body -> the object events it carries (none for a test event)."""
    try:
        message = json.loads(body)
    except (json.JSONDecodeError, TypeError) as e:
        raise MalformedMessage(f"the message body is not JSON: {body[:200]!r}") from e
    if not isinstance(message, dict):
        raise MalformedMessage(f"the message body is not a JSON object: {body[:200]!r}")
    return parse_message(message)


def parse_message(message: dict[str, Any]) -> list[ObjectEvent]:
    """A decoded message or direct S3 invocation payload -> object events."""
    if message.get("Event") == "s3:TestEvent":
        return []
    kind = _OWN_KINDS.get(str(message.get("type")))
    if kind is not None:
        return [_own(message, kind)]
    if message.get("type") == RETRY:
        return [_retry(message)]
    if message.get("Type") == "Notification" and isinstance(message.get("Message"), str):
        # S3 -> SNS -> SQS fan-out wraps the notification once more.
        return parse_body(message["Message"])
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedMessage(f"not an S3 event or an imgpipe message: keys {sorted(message)}")
    events = []
    for record in records:
        event = parse_s3_record(record)
        if event is not None:
            events.append(event)
    return events


def parse_s3_record(record: Any) -> ObjectEvent | None:
    """One ``Records[]`` entry; None for event types that do not change an object's bytes."""
    try:
        name = str(record["eventName"])
        s3 = record["s3"]
        bucket = str(s3["bucket"]["name"])
        obj = s3["object"]
        key = unquote_plus(str(obj["key"]))
    except (KeyError, TypeError) as e:
        raise MalformedMessage(f"an S3 record without {e}: {str(record)[:300]}") from e
    if name.startswith("ObjectCreated:"):
        kind = Kind.created
    elif name.startswith("ObjectRemoved:"):
        kind = Kind.removed
    else:
        return None  # restore, tagging, ACL, lifecycle transition: the bytes did not change
    size = obj.get("size")
    etag = obj.get("eTag") or obj.get("etag")
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=key,
        sequencer=normalize_sequencer(obj.get("sequencer")),
        etag=str(etag).strip('"') if etag else None,
        size=int(size) if size is not None and str(size).isdigit() else None,
        name=name,
        time=record.get("eventTime"),
        version_id=str(obj["versionId"]) if obj.get("versionId") else None,
    )


_OWN_KINDS = {REPROCESS: Kind.reprocess, BACKFILL: Kind.backfill, FORGET: Kind.forget}


def _own(message: dict[str, Any], kind: Kind) -> ObjectEvent:
    name = str(message["type"])
    bucket, key = message.get("bucket"), message.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise MalformedMessage(f"{name} needs a bucket and a key: {message}")
    etag, size = message.get("etag"), message.get("size")
    if etag is not None and not isinstance(etag, str):
        raise MalformedMessage(f"{name}: the etag is not a string: {message}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise MalformedMessage(f"{name}: the size is not a byte count: {message}")
    # Our own message: the key is plain text, not URL-encoded.
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=key,
        etag=etag.strip('"') if etag else None,
        size=size,
        name=name,
    )


def retry_message(event: ObjectEvent, tries: int) -> str:
    """The body that brings ``event`` back for another try, ``tries`` tries after its first.

    Everything that orders and checks the event travels with it (sequencer, ETag), so a retry
    that arrives after a newer upload loses to it exactly as the original would have.
    """
    return json.dumps(
        {
            "type": RETRY,
            "kind": event.kind.value,
            "bucket": event.bucket,
            "key": event.key,
            "sequencer": event.sequencer,
            "etag": event.etag,
            "size": event.size,
            "name": event.name,
            "time": event.time,
            "tries": tries,
        }
    )


def _retry(message: dict[str, Any]) -> ObjectEvent:
    bucket, key, tries = message.get("bucket"), message.get("key"), message.get("tries")
    try:
        kind = Kind(str(message.get("kind")))
    except ValueError as e:
        raise MalformedMessage(f"{RETRY} with an unknown kind: {message}") from e
    if (
        not isinstance(bucket, str)
        or not isinstance(key, str)
        or not bucket
        or not key
        or not isinstance(tries, int)
        or tries < 1
    ):
        raise MalformedMessage(f"{RETRY} needs a kind, a bucket, a key and its tries: {message}")
    size = message.get("size")
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=key,  # our own message: plain text, not URL-encoded
        sequencer=normalize_sequencer(message.get("sequencer")),
        etag=message.get("etag") or None,
        size=size if isinstance(size, int) else None,
        name=str(message.get("name") or RETRY),
        time=message.get("time"),
        tries=tries,
    )
