"""GET /models/{version}/estimate: the version's click rate in the exploration slot, estimated
from logged exploration draws before it serves anyone (shared/offpolicy.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from services.gateway.deps import PipelineDep, ServedDep
from services.gateway.security import AdminDep
from shared.offpolicy import Draw, estimate
from shared.schemas.models import OffPolicyEstimate
from shared.schemas.serving import ErrorBody, ItemFilters

router = APIRouter()
# Answers asked for at once while collecting the version's top products per user.
CONCURRENCY = 8


@router.get(
    "/models/{version}/estimate",
    response_model=OffPolicyEstimate,
    responses={409: {"model": ErrorBody, "description": "the stages cannot serve the version"}},
)
async def estimate_version(
    version: Annotated[int, Path(ge=1, le=2**31)],
    pipeline: PipelineDep,
    served: ServedDep,
    _: AdminDep,
    m: Annotated[int, Query(ge=1, le=100, description="the version's top m per user")] = 10,
    draws: Annotated[int, Query(ge=1, le=20_000, description="the latest draws read")] = 2000,
) -> Any:
    """Admin: one answer per user of the draws, pinned to `version` (it costs that many
    answers)."""
    logged = await served.explored(draws)
    users = sorted({d.user for d, _ in logged})
    gate = asyncio.Semaphore(CONCURRENCY)
    failed: list[str] = []

    async def top_of(user: str) -> tuple[str, list[str]]:
        async with gate:
            got = await pipeline.answer(user, m, ItemFilters(), version=version)
        if got is None or got.degraded is not None or got.version != version:
            failed.append(user)
            return user, []
        return user, [i.product for i in got.items]

    top = dict(await asyncio.gather(*(top_of(u) for u in users)))
    if users and len(failed) == len(users):
        detail = f"the stages could not answer with version {version} (is it stored?)"
        return JSONResponse({"detail": detail}, status_code=409)
    found = estimate([Draw(d.user, d.product, d.propensity, c) for d, c in logged], top, m)
    clicks = sum(c for _, c in logged)
    return OffPolicyEstimate(
        version=version,
        m=m,
        logged_click_rate=clicks / len(logged) if logged else None,
        **vars(found),
    )
