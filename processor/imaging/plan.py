"""Step 4, plan: every decision before any pixel (processor/rules/plan.py, pure).

The limits are checked here, from the header: an image over a hard limit is refused, an
animation over a motion limit is kept still (the plan says why).
"""

from __future__ import annotations

from processor.core.config import EngineConfig
from processor.rules.header import Header
from processor.rules.plan import Plan, make_plan


def plan(header: Header, config: EngineConfig) -> Plan:
    return make_plan(header, config)
