"""Placeholder until `python -m benchmarks.calibrate` writes the table."""

from __future__ import annotations

METRIC = "ssimulacra2"
PHOTOS = 0
LIBVIPS = ""
EFFORTS: dict[str, int] = {}
BEFORE: dict[str, dict[int, float]] = {}
CURVES: dict[str, dict[int, tuple[tuple[int, float], ...]]] = {}
