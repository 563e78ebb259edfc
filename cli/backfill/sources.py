"""What a backfill sends: the objects of a bucket listing or of an S3 Inventory report.

Both give the objects in one fixed order with a position after each, so a checkpoint can say
"everything up to here was sent" and a resumed run starts right after it:

- a listing (ListObjectsV2) is in key order; its position is the last key (``StartAfter``);
- an inventory is its manifest's data files in manifest order, rows in file order; its
  position is (file, row). A report is immutable, so the same run always sees the same rows.

Inventories come as AWS writes them: ``manifest.json`` (``fileFormat`` CSV or Parquet, the
``fileSchema`` naming the columns, ``files`` with each data file's MD5), gzipped CSV without a
header whose keys are URL-encoded, or Parquet (through pyarrow, the `local` extra). ORC is
refused with a clear error. Only current versions are sent (a report of all versions lists
noncurrent ones and delete markers too).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

Position = dict[str, Any]


class SourceError(Exception):
    """The source cannot be read as given (exit code 2, the message says why)."""


@dataclass(frozen=True)
class Entry:
    bucket: str
    key: str
    size: int | None  # bytes; None when the inventory has no Size column
    etag: str | None  # without quotes; None when the inventory has no ETag column


class Source(Protocol):
    label: str  # how the user named it: the checkpoint is only valid for the same label

    def entries(self, after: Position | None = None) -> Iterator[tuple[Entry, Position]]:
        """Every object after ``after``, each with the position that ends right after it."""
        ...


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise SourceError(f"expected s3://bucket/prefix, got {url!r}")
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise SourceError(f"no bucket in {url!r}")
    return bucket, key


# --- a listing -----------------------------------------------------------------------------


class Listing:
    def __init__(self, s3: Any, url: str) -> None:
        self._s3 = s3
        self.bucket, self.prefix = split_s3_url(url)
        self.label = f"s3://{self.bucket}/{self.prefix}"

    def entries(self, after: Position | None = None) -> Iterator[tuple[Entry, Position]]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if after:
            request["StartAfter"] = after["after"]
        for page in self._s3.get_paginator("list_objects_v2").paginate(**request):
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                etag = str(obj.get("ETag", "")).strip('"') or None
                yield Entry(self.bucket, key, int(obj.get("Size", 0)), etag), {"after": key}


# --- an inventory --------------------------------------------------------------------------

# Inventory columns as the CSV schema names them -> as Parquet names them.
_PARQUET_NAMES = {
    "Bucket": "bucket",
    "Key": "key",
    "Size": "size",
    "ETag": "e_tag",
    "IsLatest": "is_latest",
    "IsDeleteMarker": "is_delete_marker",
}


class Inventory:
    """An S3 Inventory report from its ``manifest.json``."""

    def __init__(self, s3: Any, manifest_url: str) -> None:
        self._s3 = s3
        bucket, key = split_s3_url(manifest_url)
        if not key.endswith("manifest.json"):
            raise SourceError(f"an inventory is named by its manifest.json, got {manifest_url}")
        self.label = f"inventory s3://{bucket}/{key}"
        self.manifest = self._manifest(bucket, key)
        self.format = str(self.manifest.get("fileFormat", "")).upper()
        if self.format not in ("CSV", "PARQUET"):
            raise SourceError(
                f"inventory format {self.manifest.get('fileFormat')!r} is not read here: "
                "configure the inventory as CSV or Parquet"
            )
        destination = str(self.manifest.get("destinationBucket", ""))
        self.data_bucket = destination.rpartition(":")[2] or bucket
        self.files = [dict(f) for f in self.manifest.get("files", [])]
        self.columns = _columns(str(self.manifest.get("fileSchema", "")), self.format)
        if "Key" not in self.columns or "Bucket" not in self.columns:
            raise SourceError("the inventory's fileSchema has no Bucket and Key columns")

    def _manifest(self, bucket: str, key: str) -> dict[str, Any]:
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            manifest: dict[str, Any] = json.loads(body)
        except json.JSONDecodeError as e:
            raise SourceError(f"s3://{bucket}/{key} is not an inventory manifest: {e}") from e
        return manifest

    def _data(self, index: int) -> bytes:
        file = self.files[index]
        data: bytes = self._s3.get_object(Bucket=self.data_bucket, Key=file["key"])["Body"].read()
        expected = file.get("MD5checksum")
        if expected and hashlib.md5(data).hexdigest() != expected:
            raise SourceError(f"inventory file {file['key']} does not match its MD5 checksum")
        return data

    def entries(self, after: Position | None = None) -> Iterator[tuple[Entry, Position]]:
        start_file, start_row = (after["file"], after["row"]) if after else (0, -1)
        for index in range(start_file, len(self.files)):
            rows = self._rows(self._data(index))
            for number, row in enumerate(rows):
                if index == start_file and number <= start_row:
                    continue
                entry = self._entry(row)
                if entry is not None:
                    yield entry, {"file": index, "row": number}

    def _rows(self, data: bytes) -> Iterator[dict[str, Any]]:
        if self.format == "CSV":
            text = io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(data)), encoding="utf-8")
            for values in csv.reader(text):
                yield dict(zip(self.columns, values, strict=False))
            return
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ModuleNotFoundError as e:  # the Lambda runtime set has no pyarrow
            raise SourceError("reading a Parquet inventory needs pyarrow (make install)") from e
        # One part of an inventory gains nothing from Arrow's thread pools; the console
        # script leaves without the interpreter's teardown once pyarrow is loaded (cli/main.py).
        table = pq.read_table(pa.BufferReader(data), use_threads=False, pre_buffer=False)
        rows = table.to_pylist()
        del table
        names = {v: k for k, v in _PARQUET_NAMES.items()}
        for row in rows:
            yield {names.get(k, k): v for k, v in row.items()}

    def _entry(self, row: dict[str, Any]) -> Entry | None:
        if _false(row.get("IsLatest")) or _true(row.get("IsDeleteMarker")):
            return None  # a noncurrent version or a delete marker: nothing to derive
        key = str(row["Key"])
        if self.format == "CSV":
            key = unquote_plus(key)  # CSV inventories URL-encode keys; Parquet does not
        size = row.get("Size")
        etag = row.get("ETag")
        return Entry(
            bucket=str(row["Bucket"]),
            key=key,
            size=int(size) if size not in (None, "") else None,
            etag=str(etag).strip('"') or None if etag else None,
        )


def _columns(schema: str, fmt: str) -> list[str]:
    """The data files' columns, as the CSV schema names them."""
    if fmt == "CSV":
        return [c.strip() for c in schema.split(",") if c.strip()]
    # Parquet: "message s3.inventory { required binary bucket (UTF8); optional int64 size; }"
    names = {v: k for k, v in _PARQUET_NAMES.items()}
    return [names.get(f, f) for f in re.findall(r"(?:required|optional)\s+\w+\s+(\w+)", schema)]


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _false(value: Any) -> bool:
    return value is False or str(value).lower() == "false"
