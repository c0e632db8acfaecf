"""How every listing route writes its items: JSON straight from the models, with the version."""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import TypeAdapter

from services.gateway.popular import pick
from shared.live_catalog import CatalogMirror
from shared.schemas.serving import ItemFilters, RecommendedItem

ITEMS = TypeAdapter(list[RecommendedItem])
JSON = "application/json"


def live_items(
    items: list[RecommendedItem], catalog: CatalogMirror, filters: ItemFilters | None = None
) -> list[RecommendedItem]:
    """`items` as this process's live catalog says now: nothing deleted or sold out, the latest
    prices and titles, and `filters` checked again on them. The stage that chose the items
    filtered with its own mirror of the catalog, which may be a poll behind this one: a price
    shown is always one the filter accepts."""
    items = catalog.overlay(items)
    return items if filters is None else pick(items, len(items), filters)


def items_answer(
    items: list[RecommendedItem],
    version: int,
    degraded: str | None = None,
    explain: bool = False,
) -> Response:
    """`items` (already live: see `live_items`) as a JSON list, with `X-Model-Version` and,
    when `degraded`, `X-Degraded`. The `explanation` field only when asked for: it is large, and
    most callers never want it."""
    headers = {"X-Model-Version": str(version)}
    if degraded is not None:
        headers["X-Degraded"] = degraded
    drop = None if explain else {"__all__": {"explanation"}}
    return Response(ITEMS.dump_json(items, exclude=drop), media_type=JSON, headers=headers)
