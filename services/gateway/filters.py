"""The item filters every listing route takes as query parameters, parsed once for all of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from shared.schemas.serving import ItemFilters

# Free text from a shop's catalog (spaces, accents): printable, bounded.
Label = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


async def query_filters(
    category: Label | None = None,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    exclude: Annotated[
        str | None, Query(max_length=13_000, description="comma-separated ids (at most 100)")
    ] = None,
) -> ItemFilters:
    try:
        return ItemFilters(
            category=category,
            min_price=min_price,
            max_price=max_price,
            exclude=[e for e in (exclude or "").split(",") if e],
        )
    except ValidationError as exc:  # 422 naming the query parameter, like FastAPI's own
        raise RequestValidationError(
            [
                {"loc": ("query", *e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ]
        ) from exc


FiltersDep = Annotated[ItemFilters, Depends(query_filters)]
