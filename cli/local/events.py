"""`imgpipe local --events`: print every completion event as the embedded AWS delivers it.

A rule on the stack's event bus sends everything with ``source: imgpipe`` to a queue of its
own (the way an integrator would subscribe, docs/events.md), and a thread prints each event,
one JSON line, as it arrives; the message is deleted once printed.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, TextIO

from processor.core.changes import SOURCE

log = logging.getLogger(__name__)

RULE = "imgpipe-local-tap"
PATTERN = {"source": [SOURCE]}


def subscribe(events: Any, sqs: Any, *, bus: str, queue_name: str) -> str:
    """A queue that receives every event of ``bus`` from imgpipe (idempotent); its URL."""
    url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=RULE, EventBusName=bus, EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule=RULE, EventBusName=bus, Targets=[{"Id": "tap", "Arn": str(arn)}])
    return url


class EventPrinter:
    """Prints what arrives on the tap queue until ``stop()``."""

    def __init__(self, sqs: Any, queue_url: str, out: TextIO) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-printer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
                messages = response.get("Messages", [])
                for message in messages:
                    self._out.write(f"event {json.dumps(json.loads(message['Body']))}\n")
                self._out.flush()
                if messages:
                    self._sqs.delete_message_batch(
                        QueueUrl=self._url,
                        Entries=[
                            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                            for n, m in enumerate(messages)
                        ],
                    )
            except Exception:  # keep printing: a hiccup of the embedded AWS is not fatal
                if self._stop.is_set():
                    return
                log.exception("reading the event tap failed; retrying")
                self._stop.wait(1)
