"""The invocation being served: its clock, and how many images it has started.

One object per invocation, handed to each record (no module-level state): an image is started
only while the invocation has its time budget left (processor/rules/pacing.py); the rest of
the batch is reported failed, untouched, and comes back in a later invocation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from aws_lambda_powertools.utilities.typing import LambdaContext

from processor.core.errors import NotEnoughTime
from processor.core.events import Kind, ObjectEvent
from processor.rules.pacing import image_budget


@dataclass
class Invocation:
    context: LambdaContext | None
    budget_s: float  # an image's configured time budget
    reserve_s: float  # kept back per image for S3 and DynamoDB
    started: int = 0  # images started in it
    # Records run in threads when images overlap: the pacing decision and the count it
    # depends on are taken one at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def time_budget(self, event: ObjectEvent) -> float | None:
        """The seconds this event's image may compute; NotEnoughTime when it must wait."""
        if event.kind is Kind.removed or self.context is None:
            return None
        with self._lock:
            remaining_s = self.context.get_remaining_time_in_millis() / 1000
            budget = image_budget(
                remaining_s=remaining_s,
                started=self.started,
                budget_s=self.budget_s,
                reserve_s=self.reserve_s,
            )
            if budget is not None:
                self.started += 1
        if budget is None:
            raise NotEnoughTime(
                f"{remaining_s:.1f} s are left in this invocation, less than an image's budget "
                f"of {self.budget_s:g} s plus {self.reserve_s:g} s: "
                "not started, it comes back later"
            )
        return budget
