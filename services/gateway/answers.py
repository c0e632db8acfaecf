"""How every listing route writes its items: JSON straight from the models, with the version."""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import TypeAdapter

from shared.live_catalog import CatalogMirror
from shared.schemas.serving import RecommendedItem

ITEMS = TypeAdapter(list[RecommendedItem])
JSON = "application/json"


def items_answer(
    items: list[RecommendedItem],
    version: int,
    catalog: CatalogMirror,
    degraded: str | None = None,
    explain: bool = False,
) -> Response:
    """`items` as the live catalog says now (nothing deleted or sold out, the latest prices and
    titles), as a JSON list, with `X-Model-Version` and, when `degraded`, `X-Degraded`. The
    `explanation` field only when asked for: it is large, and most callers never want it."""
    items = catalog.overlay(items)
    headers = {"X-Model-Version": str(version)}
    if degraded is not None:
        headers["X-Degraded"] = degraded
    drop = None if explain else {"__all__": {"explanation"}}
    return Response(ITEMS.dump_json(items, exclude=drop), media_type=JSON, headers=headers)
