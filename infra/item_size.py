"""What a DynamoDB write costs: item sizes, index entries and write units, from the rules AWS
publishes (developerguide/CapacityUnitCalculations.html, GSI.html#GSI.ThroughputConsiderations).

Pure: items are in the low-level (typed) form boto3's client sends, ``{"S": "..."}`` and so on;
index definitions are the ``GlobalSecondaryIndexes`` entries of ``create_table`` (as
``infra.template.table_definition()`` gives them). The capacity model (infra/capacity.py) and
the record-size measurement (benchmarks/records.py) both count with these functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

WRITE_UNIT_BYTES = 1024  # one WCU writes up to 1 KB
READ_UNIT_BYTES = 4096  # one RCU reads up to 4 KB (strongly consistent; eventual is half)

Item = Mapping[str, Any]


def _number_bytes(text: str) -> int:
    digits = str(Decimal(text)).lstrip("-").replace(".", "").replace("E", " ").split(" ")[0]
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def value_bytes(value: Mapping[str, Any]) -> int:
    """Bytes of one typed value, without its attribute name."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return _number_bytes(str(data))
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in data)
    if kind == "NS":
        return sum(_number_bytes(str(n)) for n in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "L":  # 3 bytes per list, 1 per element
        return 3 + sum(value_bytes(v) + 1 for v in data)
    if kind == "M":  # 3 bytes per map, 1 per element, names count
        return 3 + sum(len(k.encode()) + value_bytes(v) + 1 for k, v in data.items())
    raise ValueError(f"not a DynamoDB value: {kind}")


def item_bytes(item: Item) -> int:
    """Size of an item as DynamoDB bills it: attribute names plus values."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def write_units(size: int) -> int:
    """WCU of one standard write of ``size`` bytes (a delete of such an item costs the same)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, *, consistent: bool = False) -> float:
    """RCU of reading ``size`` bytes in one request (Query sums its items, then rounds)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def key_names(schema: Sequence[Mapping[str, str]]) -> list[str]:
    return [k["AttributeName"] for k in schema]


def index_entry(
    item: Item | None, index: Mapping[str, Any], table_keys: Sequence[str]
) -> dict[str, Any] | None:
    """The entry ``item`` has in ``index``, or None when it lacks a key attribute (sparse)."""
    if item is None:
        return None
    keys = key_names(index["KeySchema"])
    if any(k not in item for k in keys):
        return None
    projection = index.get("Projection", {"ProjectionType": "ALL"})
    kind = projection["ProjectionType"]
    if kind == "ALL":
        return dict(item)
    wanted = set(keys) | set(table_keys)
    if kind == "INCLUDE":
        wanted |= set(projection.get("NonKeyAttributes", []))
    return {k: v for k, v in item.items() if k in wanted}


def index_write_units(
    old: dict[str, Any] | None, new: dict[str, Any] | None, keys: Sequence[str]
) -> int:
    """WCU one table write costs an index, from the entry before and after.

    AWS: a new entry is a put, a vanished one a delete, a changed index key a delete plus a
    put, a changed projected attribute one update; an unchanged entry costs nothing.
    """
    if old is None and new is None:
        return 0
    if old is None:
        return write_units(item_bytes(new or {}))
    if new is None:
        return write_units(item_bytes(old))
    if any(old.get(k) != new.get(k) for k in keys):
        return write_units(item_bytes(old)) + write_units(item_bytes(new))
    if old == new:
        return 0
    return write_units(item_bytes(new))


def write_cost(old: Item | None, new: Item | None, table: Mapping[str, Any]) -> dict[str, int]:
    """WCU of replacing ``old`` by ``new`` (PutItem; None: created or deleted), per target.

    ``table`` is ``create_table`` keyword arguments. The table itself is charged for the larger
    of the two items (PutItem replaces), each index as ``index_write_units`` says.
    """
    sizes = [item_bytes(i) for i in (old, new) if i is not None]
    cost = {"table": write_units(max(sizes)) if sizes else 0}
    table_keys = key_names(table["KeySchema"])
    for index in table.get("GlobalSecondaryIndexes", []):
        before = index_entry(old, index, table_keys)
        after = index_entry(new, index, table_keys)
        cost[index["IndexName"]] = index_write_units(before, after, key_names(index["KeySchema"]))
    return cost
