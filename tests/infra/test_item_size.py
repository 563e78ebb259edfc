"""DynamoDB's published size and write-unit rules, as infra/item_size.py counts them."""

from __future__ import annotations

import pytest

from infra.item_size import (
    index_entry,
    index_write_units,
    item_bytes,
    read_units,
    write_cost,
    write_units,
)

pytestmark = pytest.mark.unit


def test_sizes_follow_the_published_rules() -> None:
    # strings: name + UTF-8 bytes; numbers: name + 1 byte per two significant digits + 1
    assert item_bytes({"id": {"S": "abc"}}) == 2 + 3
    assert item_bytes({"n": {"N": "123.40"}}) == 1 + 2 + 1  # 1234: two bytes, plus one
    assert item_bytes({"n": {"N": "0.001"}}) == 1 + 1 + 1
    assert item_bytes({"ok": {"BOOL": True}}) == 2 + 1
    # a map: 3 bytes, plus per element its name, its value and 1 byte
    assert item_bytes({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + (1 + 2 + 1)
    assert item_bytes({"l": {"L": [{"S": "x"}, {"S": "yz"}]}}) == 1 + 3 + (1 + 1) + (2 + 1)
    assert item_bytes({"é": {"S": "é"}}) == 2 + 2


def test_units_round_up_per_request() -> None:
    assert [write_units(n) for n in (0, 1, 1024, 1025, 3000)] == [1, 1, 1, 2, 3]
    assert read_units(4096) == 0.5 and read_units(4097) == 1.0
    assert read_units(100, consistent=True) == 1.0


LISTING = {
    "IndexName": "by_created",
    "KeySchema": [
        {"AttributeName": "list_pk", "KeyType": "HASH"},
        {"AttributeName": "sort_key", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]},
}
KEYS = ["list_pk", "sort_key"]
TABLE = {
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "GlobalSecondaryIndexes": [LISTING],
}


def item(status: str, pk: str | None = "image#1", extra: int = 0) -> dict[str, dict[str, str]]:
    out = {"id": {"S": "i"}, "sort_key": {"S": "t#i"}, "status": {"S": status}}
    if pk:
        out["list_pk"] = {"S": pk}
    if extra:
        out["blob"] = {"S": "x" * extra}
    return out


def test_index_entries_project_keys_and_included_attributes_only() -> None:
    entry = index_entry(item("done", extra=5000), LISTING, ["id"])
    assert entry is not None and set(entry) == {"id", "list_pk", "sort_key", "status"}
    assert index_entry(item("done", pk=None), LISTING, ["id"]) is None  # sparse: no key, no entry


def test_index_writes_put_delete_move_update_or_nothing() -> None:
    def entry(i: dict[str, dict[str, str]] | None) -> dict[str, object] | None:
        return index_entry(i, LISTING, ["id"])

    assert index_write_units(None, entry(item("processing")), KEYS) == 1  # new entry: a put
    assert index_write_units(entry(item("done")), None, KEYS) == 1  # gone: a delete
    moved = index_write_units(entry(item("done")), entry(item("done", pk="image#2")), KEYS)
    assert moved == 2  # a changed key: delete and put
    assert index_write_units(entry(item("processing")), entry(item("done")), KEYS) == 1
    # an attribute the index does not project changed: the index is not written at all
    assert index_write_units(entry(item("done")), entry(item("done", extra=10)), KEYS) == 0


def test_a_put_costs_the_table_the_larger_item() -> None:
    cost = write_cost(item("done", extra=3000), item("done"), TABLE)
    assert cost == {"table": 3, "by_created": 0}
    assert write_cost(None, item("processing"), TABLE) == {"table": 1, "by_created": 1}
