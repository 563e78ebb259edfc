"""benchmarks/records.py: what it makes of the writes it saw (the measurement itself runs the
processor on moto's server and is not repeated here)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.records import ASSUMED_UPLOADER, summarize, with_uploader
from processor.aws.dynamo import serialize, to_item
from processor.core.record import ImageRecord, Status

pytestmark = pytest.mark.unit


def write(image: str, status: str, size: int, **wcu: int) -> dict[str, object]:
    return {"id": image, "status": status, "ok": True, "bytes": size, "wcu": wcu}


def test_writes_are_summed_per_image_and_grouped_by_final_state() -> None:
    log = SimpleNamespace(
        writes=[
            write("a", "processing", 300, table=1, by_state=1),
            write("b", "processing", 310, table=1, by_state=1),
            write("a", "done", 1200, table=2, by_state=1, by_created=2),
            write("b", "failed", 450, table=1, by_state=2),
        ]
    )
    out = summarize(log)  # type: ignore[arg-type]
    assert out["images"] == 2
    done, failed = out["by_outcome"]["done"], out["by_outcome"]["failed"]
    assert done["images"] == failed["images"] == 1
    assert done["writes_per_image"]["mean"] == 2
    assert done["wcu_per_image"]["table"]["mean"] == 3
    assert done["wcu_per_image"]["by_state"]["mean"] == 2
    assert done["item_bytes"]["done"]["max"] == 1200
    assert failed["wcu_per_image"]["by_state"]["mean"] == 3


def test_items_are_counted_as_if_they_named_an_uploader() -> None:
    record = ImageRecord(
        id="i",
        source_key="raw/a.jpg",
        status=Status.done,
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:00.000000Z",
    )
    item = with_uploader(serialize(to_item(record)))
    assert item["uploader"] == {"S": ASSUMED_UPLOADER}
    assert item["uploader_pk"]["S"].startswith(f"{ASSUMED_UPLOADER}#")
