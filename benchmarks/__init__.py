"""Benchmark harness: this project's engine against Pillow and a bare pyvips floor.

Run with ``python -m benchmarks.run`` (or ``make bench``); see docs/readme/benchmarks.md.
"""
