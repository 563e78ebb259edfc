"""What Lambda's SQS event source mapping does, for the local stack.

Lambda polls the queue, hands the function batches shaped like ``{"Records": [...]}`` with
``eventSource: aws:sqs``, and deletes what succeeded. With ``ReportBatchItemFailures`` the
function returns ``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}``; those messages
are left alone, so they come back after the visibility timeout, and after the queue's
``maxReceiveCount`` SQS moves them to the dead-letter queue. An exception, or a response
naming a message that is not in the batch, fails the whole batch (as Lambda does).

The pure part (``lambda_event``, ``settle``, the log lines) decides; ``SqsWorker`` talks to
SQS and runs one poller per invoker, each invoking the handler with one batch at a time: the
mapping's maximum concurrency is the number of invokers (execution environments, see
``invoker``). Its log says plainly when an invocation is stopped at the function's timeout or
memory, and when a message comes back: after such a stop, or as the retry of a try that was
starved of CPU (both run alone, docs/processor.md).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cli.local.invoker import FunctionTimedOut, Invoker, MemoryExceeded
from processor.core.errors import InvocationFailed, MalformedMessage
from processor.core.events import parse_body
from processor.core.messages import TRIES_ATTRIBUTE

log = logging.getLogger(__name__)

SQS_MAX_BATCH = 10  # ReceiveMessage and DeleteMessageBatch take at most 10 messages


# --- pure: the event Lambda builds, and what its response means ---------------------------


def lambda_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS ``ReceiveMessage`` entry -> one record of a Lambda SQS event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # SQS says StringValue/BinaryValue (bytes); Lambda says stringValue/binaryValue (base64).
    binary = value.get("BinaryValue")
    out: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [
            base64.b64encode(b).decode("ascii") for b in value.get("BinaryListValues", [])
        ],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if binary is not None:
        out["binaryValue"] = base64.b64encode(binary).decode("ascii")
    return out


def lambda_event(
    messages: Sequence[dict[str, Any]], *, queue_arn: str, region: str
) -> dict[str, Any]:
    return {"Records": [lambda_record(m, queue_arn=queue_arn, region=region) for m in messages]}


@dataclass(frozen=True)
class Settlement:
    succeeded: tuple[str, ...]  # message ids to delete
    failed: tuple[str, ...]  # message ids left for the visibility timeout
    reason: str = ""  # why the whole batch failed, when it did


def settle(
    message_ids: Sequence[str],
    response: Any,
    *,
    report_batch_item_failures: bool = True,
    raised: BaseException | None = None,
) -> Settlement:
    """Which messages of a batch succeeded, given the handler's response (Lambda's rules)."""
    ids = tuple(message_ids)
    if raised is not None:
        return Settlement((), ids, f"the handler raised {type(raised).__name__}: {raised}")
    if not report_batch_item_failures or response is None:
        return Settlement(ids, ())
    if not isinstance(response, dict):
        return Settlement(ids, ())  # Lambda ignores a response that is not a JSON object
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return Settlement(ids, ())
    if not isinstance(failures, list):
        return Settlement((), ids, "batchItemFailures is not a list")
    failed: list[str] = []
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            # "If the response is not valid, Lambda considers the whole batch failed."
            return Settlement((), ids, f"invalid batch item failure: {item!r}")
        failed.append(identifier)
    return Settlement(tuple(i for i in ids if i not in failed), tuple(failed))


def _keys(body: str) -> str:
    try:
        keys = [e.key for e in parse_body(body)]
    except MalformedMessage:
        keys = []
    return ", ".join(keys) or "a message"


def coming_back(message: dict[str, Any]) -> str | None:
    """The log line for a received message that is not a first delivery, else None."""
    tries = message.get("MessageAttributes", {}).get(TRIES_ATTRIBUTE, {}).get("StringValue")
    received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1) or 1)
    what = _keys(message.get("Body", ""))
    if tries is not None:
        return (
            f"retry of {what}: try {tries} was starved of CPU and ran out of time; "
            f"try {int(tries) + 1} runs alone"
        )
    if received > 1:
        return f"{what} is back (receive {received}): it runs alone"
    return None


def invocation_failed(error: InvocationFailed, messages: int, visibility_s: int | None) -> str:
    """The log line for an invocation that failed as a whole."""
    back = (
        f"after the queue's visibility timeout ({visibility_s} s)"
        if visibility_s is not None
        else "after the queue's visibility timeout"
    )
    if isinstance(error, FunctionTimedOut):
        what = f"function timeout: the invocation was {error.message}"
    elif isinstance(error, MemoryExceeded):
        what = f"out of memory: the invocation {error.message}"
    else:
        what = f"invocation failed: {error.message}"
    return f"{what}; its {messages} messages come back {back} and run alone"


# --- the executor --------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingConfig:
    """The event source mapping, as the template declares it."""

    queue_url: str
    queue_arn: str
    region: str
    batch_size: int = 10
    # Seconds to keep gathering messages into a batch (MaximumBatchingWindowInSeconds).
    batching_window_s: float = 0.0
    report_batch_item_failures: bool = True
    # Long-poll wait per ReceiveMessage (Lambda uses 20 s). Short, so Ctrl-C stops quickly.
    wait_time_s: int = 2
    # The queue's visibility timeout (s), for the log: when what failed comes back.
    visibility_timeout_s: int | None = None


@dataclass
class WorkerStats:
    invocations: int = 0
    succeeded: int = 0  # messages deleted
    failed: int = 0  # messages left to come back
    batch_errors: int = 0  # invocations that failed as a whole
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, settlement: Settlement) -> None:
        with self.lock:
            self.invocations += 1
            self.succeeded += len(settlement.succeeded)
            self.failed += len(settlement.failed)
            self.batch_errors += bool(settlement.reason)


class SqsWorker:
    """Polls one queue with a thread per invoker; each thread invokes its own per batch."""

    def __init__(self, sqs: Any, invokers: Sequence[Invoker], config: MappingConfig) -> None:
        if not invokers:
            raise ValueError("the worker needs at least one invoker")
        self._sqs = sqs
        self._invokers = list(invokers)
        self.config = config
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("the worker is already running")
        self._stop.clear()
        for n, invoker in enumerate(self._invokers):
            thread = threading.Thread(
                target=self._run, args=(invoker,), name=f"sqs-worker-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info(
            "worker polling %s: batch size %d, concurrency %d",
            self.config.queue_url,
            self.config.batch_size,
            len(self._threads),
        )

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop polling and let batches in flight finish (up to ``timeout_s`` beyond the
        current long poll), then close the invokers. True when every thread has ended."""
        self._stop.set()
        limit = self.config.wait_time_s + timeout_s
        deadline = time.monotonic() + limit
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("worker threads still running after %.0f s: %s", limit, alive)
        self._threads = [t for t in self._threads if t.is_alive()]
        for invoker in self._invokers:
            invoker.close()
        return not alive

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _run(self, invoker: Invoker) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                batch = self._receive_batch()
                if batch:
                    self.run_batch(batch, invoker)
                backoff = 0.5
            except Exception:  # keep polling: a worker that dies silently looks like a hang
                if self._stop.is_set():
                    break
                log.exception("worker poll failed; retrying in %.1f s", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.config.queue_url,
            MaxNumberOfMessages=max(1, min(SQS_MAX_BATCH, max_messages)),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _receive_batch(self) -> list[dict[str, Any]]:
        """Up to batch_size messages, gathering for at most the batching window."""
        cfg = self.config
        batch = self._receive(cfg.batch_size, cfg.wait_time_s)
        if not batch or cfg.batching_window_s <= 0:
            return batch
        window_ends = time.monotonic() + cfg.batching_window_s
        while len(batch) < cfg.batch_size and not self._stop.is_set():
            left = window_ends - time.monotonic()
            if left <= 0:
                break
            batch += self._receive(cfg.batch_size - len(batch), min(int(left), cfg.wait_time_s))
        return batch

    def run_batch(self, messages: Sequence[dict[str, Any]], invoker: Invoker) -> Settlement:
        """Invoke the handler with one batch and delete what succeeded."""
        cfg = self.config
        event = lambda_event(messages, queue_arn=cfg.queue_arn, region=cfg.region)
        ids = [m["MessageId"] for m in messages]
        for message in messages:
            note = coming_back(message)
            if note:
                log.info("%s", note)
        response: Any = None
        raised: BaseException | None = None
        try:
            response = invoker.invoke(event)
        except InvocationFailed as e:  # as on Lambda: the whole batch comes back
            log.error("%s", invocation_failed(e, len(ids), cfg.visibility_timeout_s))
            raised = e
        settlement = settle(
            ids,
            response,
            report_batch_item_failures=cfg.report_batch_item_failures,
            raised=raised,
        )
        if settlement.reason and raised is None:
            log.error("batch failed as a whole: %s", settlement.reason)
        receipts = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        self._delete([receipts[i] for i in settlement.succeeded])
        self.stats.add(settlement)
        if settlement.failed:
            log.info(
                "%d of %d messages failed; they return after the visibility timeout",
                len(settlement.failed),
                len(ids),
            )
        return settlement

    def _delete(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), SQS_MAX_BATCH):
            chunk = receipts[start : start + SQS_MAX_BATCH]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.config.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": r} for n, r in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                # The message will be delivered again: the handler is idempotent by design.
                log.warning("could not delete a processed message: %s", failure)
