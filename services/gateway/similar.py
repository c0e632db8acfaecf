"""GET /items/{product}/similar: the product page's "similar items" box, from stage one's
neighbour graph (taken together) and embeddings (alike)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from services.gateway.answers import items_answer, live_items
from services.gateway.deps import CatalogDep, SettingsDep, StagesDep
from services.gateway.downstream import StageError
from services.gateway.filters import FiltersDep, IdPath
from shared.schemas.serving import ErrorBody, RecommendedItem, SimilarRequest, SimilarResponse

log = logging.getLogger(__name__)
router = APIRouter()


@router.get(
    "/items/{product}/similar",
    response_model=list[RecommendedItem],
    responses={
        404: {"model": ErrorBody, "description": "the served model does not know the product"},
        503: {"model": ErrorBody, "description": "the candidate stage is unavailable"},
    },
)
async def similar(
    product: IdPath,
    stages: StagesDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    filters: FiltersDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Any:
    """Items taken together with `product` (`reason: together_with:<id>`: baskets, sessions),
    then items alike (`similar_to:<id>`), filtered like /recommend."""
    body = SimilarRequest(product=product, n=k, filters=filters)
    try:
        got = await stages.candidate.call(
            "POST",
            "/similar",
            SimilarResponse,
            settings.timeout_seconds,
            json=body.model_dump(exclude_defaults=True),
        )
    except StageError as exc:
        if exc.status == 404:
            return JSONResponse({"detail": f"unknown product {product!r}"}, status_code=404)
        log.warning("similar items unavailable: %s", exc)
        return JSONResponse({"detail": "the candidate stage is unavailable"}, status_code=503)
    return items_answer(live_items(got.items, catalog, filters), got.version)
