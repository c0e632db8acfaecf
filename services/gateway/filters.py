"""What the item routes take from the URL: a product id in the path, and the filters every
listing route takes as query parameters (parsed once for all of them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from shared.schemas.base import ID_MAX_CHARS, ID_PATTERN
from shared.schemas.serving import ItemFilters

IdPath = Annotated[str, Path(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
# Free text from a shop's catalog (spaces, accents): printable, bounded.
Label = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


async def query_filters(
    category: Annotated[
        list[Label] | None, Query(max_length=20, description="one or more (repeat it)")
    ] = None,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    # Bounded so that the longest request line stays below what the HTTP server reads (about
    # 100 KiB): 6,600 characters of 4-byte UTF-8 are 79 KiB URL-encoded.
    exclude: Annotated[
        str | None,
        Query(max_length=6600, description="comma-separated ids (at most 100, 6,600 characters)"),
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
