"""GET /online/metrics: what the served lists earned, per model version (attributed events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.deps import ServedDep
from shared.served import OnlineMetrics

router = APIRouter()


@router.get("/online/metrics", response_model=OnlineMetrics)
async def online_metrics(
    served: ServedDep,
    window_hours: Annotated[int, Query(ge=1, le=720, description="the last N hours")] = 24,
    version: Annotated[int | None, Query(ge=1, le=2**31)] = None,
) -> OnlineMetrics:
    """Lists served, items shown, clicks, add-to-carts, purchases and revenue per model version
    over the window, with CTR (per item shown, and by position), add-to-cart and conversion
    rates (per list) and revenue per 1,000 lists."""
    return await served.metrics(window_hours, version)
