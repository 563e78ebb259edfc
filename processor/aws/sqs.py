"""SqsQueue: the one SQS adapter. The API queues a reprocess (``send``); the ops commands
send in batches and redrive the dead-letter queue (``send_batch``, ``receive``, ``delete``).

The processor only sends: a try starved of CPU comes back as a message of its own, delayed
(``send_later``), and an erased image's CDN paths go to the invalidations queue
(``InvalidationQueue``, the CDN port as the processor sees it). Lambda's event source
mappings receive and delete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from processor.aws.errors import translated
from processor.core.cdn import invalidation_message
from processor.core.errors import TransientError

_BATCH = 10  # SendMessageBatch / DeleteMessageBatch / ReceiveMessage take at most 10


@dataclass(frozen=True)
class Message:
    body: str
    receipt_handle: str
    message_id: str
    attributes: dict[str, Any]


class SqsQueue:
    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.url = url

    def send(self, body: str) -> str:
        """Put one message on the queue; returns its message id."""
        with translated(f"SendMessage {self.url}"):
            response = self._client.send_message(QueueUrl=self.url, MessageBody=body)
        return str(response["MessageId"])

    def send_later(self, body: str, *, delay_s: int, attributes: Mapping[str, str]) -> None:
        """One message, delivered ``delay_s`` seconds from now (SQS: 0-900), with string
        message attributes."""
        with translated(f"SendMessage {self.url}"):
            self._client.send_message(
                QueueUrl=self.url,
                MessageBody=body,
                DelaySeconds=delay_s,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in attributes.items()
                },
            )

    def send_batch(self, bodies: Sequence[str]) -> None:
        """Send every body (in batches of 10); raises if any entry is refused."""
        for start in range(0, len(bodies), _BATCH):
            chunk = bodies[start : start + _BATCH]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            with translated(f"SendMessageBatch {self.url}"):
                response = self._client.send_message_batch(QueueUrl=self.url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                first = failed[0]
                raise TransientError(
                    f"SendMessageBatch {self.url}: {len(failed)} of {len(chunk)} refused, "
                    f"e.g. {first.get('Code')}: {first.get('Message')}"
                )

    def receive(self, *, max_messages: int = _BATCH, wait_seconds: int = 1) -> list[Message]:
        with translated(f"ReceiveMessage {self.url}"):
            response = self._client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(max_messages, _BATCH),
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
            )
        return [
            Message(
                body=m["Body"],
                receipt_handle=m["ReceiptHandle"],
                message_id=m["MessageId"],
                attributes=m.get("Attributes", {}),
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, messages: Sequence[Message]) -> None:
        for start in range(0, len(messages), _BATCH):
            chunk = messages[start : start + _BATCH]
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)
            ]
            with translated(f"DeleteMessageBatch {self.url}"):
                response = self._client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                raise TransientError(f"DeleteMessageBatch {self.url}: {len(failed)} refused")

    def approximate_count(self) -> int:
        with translated(f"GetQueueAttributes {self.url}"):
            response = self._client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        return int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))


class Sender(Protocol):
    def send(self, body: str) -> str: ...


class InvalidationQueue:
    """CdnInvalidator that records the paths durably on the invalidations queue (``queue``:
    an ``SqsQueue`` on its URL), one message per erase; the flusher
    (processor/entrypoints/flush.py) merges a window's messages into one CloudFront
    invalidation. A refused send raises (TransientError, AwsServiceError) before the erase
    purges anything, as CloudFront's refusal did when the erase called it."""

    def __init__(self, queue: Sender) -> None:
        self._queue = queue

    def invalidate(self, paths: Sequence[str]) -> None:
        if paths:
            self._queue.send(invalidation_message(paths))
