"""GET /popular: what users take now (the home page's trending row), from the candidate stage;
the cached popular list, filtered alike, when that stage is down."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from services.gateway.answers import items_answer, live_items
from services.gateway.deps import CatalogDep, PopularDep, SettingsDep, StagesDep
from services.gateway.downstream import StageError
from services.gateway.filters import FiltersDep
from services.gateway.popular import pick
from shared.observability import DEGRADED
from shared.schemas.serving import (
    ErrorBody,
    PopularResponse,
    RecommendedItem,
    TrendingRequest,
    TrendingWindow,
)

log = logging.getLogger(__name__)
router = APIRouter()


@router.get(
    "/popular",
    response_model=list[RecommendedItem],
    responses={
        503: {"model": ErrorBody, "description": "no model has been served yet"},
    },
)
async def popular_now(
    stages: StagesDep,
    catalog: CatalogDep,
    cache: PopularDep,
    settings: SettingsDep,
    filters: FiltersDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    window: Annotated[
        TrendingWindow, Query(description="half-life of an event's weight: 1h, 1d, 7d or 30d")
    ] = "1d",
) -> Any:
    """Trending products: recent events of every user, each weighing its type's weight, halved
    every `window` (`reason: trending`), then the model's popular items (`reason: popular`)."""
    body = TrendingRequest(n=k, window=window, filters=filters)
    try:
        got = await stages.candidate.call(
            "POST",
            "/trending",
            PopularResponse,
            settings.timeout_seconds,
            json=body.model_dump(exclude_defaults=True),
        )
    except StageError as exc:
        cached = cache.current
        if cached is None:
            return JSONResponse({"detail": "no model is served yet"}, status_code=503)
        log.warning("trending unavailable (%s); answering the cached popular list", exc)
        DEGRADED.labels("gateway", "candidate").inc()
        return items_answer(
            pick(catalog.overlay(cached.items), k, filters), cached.version, "candidate"
        )
    return items_answer(live_items(got.items, catalog, filters), got.version)
