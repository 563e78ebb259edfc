"""The deploy's one error type, apart so that every infra module can raise it."""

from __future__ import annotations


class DeployError(Exception):
    """A step failed in a way a person can act on; the message says what to do."""
