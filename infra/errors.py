"""The deploy's one error type, importable from infra as every infra module raises it.

Defined with every other error class in processor/core/errors.py (one module of errors).
"""

from __future__ import annotations

from processor.core.errors import DeployError

__all__ = ["DeployError"]
