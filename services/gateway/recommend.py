"""GET /recommend: candidates -> ranker over HTTP, one model version end to end."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.gateway.settings import HttpDep, SettingsDep
from shared.observability import DEGRADED
from shared.schemas import CandidateResponse, ItemFilters, RankResponse, RecommendedItem

log = logging.getLogger(__name__)
router = APIRouter()

UserParam = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


@router.get(
    "/recommend",
    response_model=list[RecommendedItem],
    responses={503: {"description": "no model is served yet, or the candidate stage is down"}},
)
async def recommend(
    user: UserParam,
    http: HttpDep,
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    category: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    exclude: Annotated[
        str | None, Query(max_length=6600, description="comma-separated ids")
    ] = None,
    segment: Annotated[
        str | None, Query(min_length=1, max_length=64, description="cold start: the user's segment")
    ] = None,
    explain: Annotated[bool, Query(description="add seed items and feature contributions")] = False,
) -> Any:
    try:
        filters = ItemFilters(
            category=category,
            min_price=min_price,
            max_price=max_price,
            exclude=[e for e in (exclude or "").split(",") if e],
        )
    except ValidationError as exc:
        errors = [{"loc": ["query", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)
    try:
        r = await http.post(
            f"{settings.candidate_url}/candidates",
            json={
                "user": user,
                "n": max(settings.n_candidates, k),
                "filters": filters.model_dump(exclude_defaults=True),
                "segment": segment,
            },
        )
    except httpx.HTTPError as exc:
        log.warning("candidate service unreachable: %s", exc)
        return JSONResponse({"detail": "candidate service unavailable"}, status_code=503)
    if r.status_code != 200:
        return JSONResponse(
            {"detail": f"candidate service answered {r.status_code}"}, status_code=503
        )
    cands = CandidateResponse.model_validate_json(r.content)
    headers = {"X-Model-Version": str(cands.version)}
    try:
        r = await http.post(
            f"{settings.ranker_url}/rank",
            json={
                "user": user,
                "version": cands.version,
                "k": k,
                "candidates": [c.model_dump() for c in cands.candidates],
                "explain": explain,
            },
        )
        r.raise_for_status()
        items = RankResponse.model_validate_json(r.content).items
    except httpx.HTTPError as exc:
        # Ranker down or slow: candidate order still answers the request, flagged as degraded.
        log.warning("ranker failed (%s); answering in candidate order", exc)
        DEGRADED.labels("gateway", "ranker").inc()
        headers["X-Degraded"] = "ranker"
        items = [
            RecommendedItem(product=c.product, score=c.score, price=None, age=None, reason=c.reason)
            for c in cands.candidates[:k]
        ]
    # `explanation` only when asked for: it is large, and most callers never want it.
    drop = None if explain else {"explanation"}
    return JSONResponse([i.model_dump(mode="json", exclude=drop) for i in items], headers=headers)
