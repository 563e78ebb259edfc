"""Liveness: answers without touching AWS, so a probe never costs a cold client."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness probe")
def read_health() -> Health:
    return Health()
