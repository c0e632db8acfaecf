"""The live catalog: `PUT/PATCH/DELETE /items/{product}` (admin key), `GET /items/{product}`,
`GET /items`. Writes reach every answer within a second (`shared/live_catalog.py`); a product
the served model knows but the live catalog does not is answered from the model's catalog."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.gateway.deps import SettingsDep, StagesDep
from services.gateway.downstream import StageError, Stages
from services.gateway.filters import IdPath
from services.gateway.security import AdminDep
from shared.live_catalog import ItemDeleted, ItemIn, ItemPage, ItemPatch, LiveCatalog, LiveItem
from shared.schemas.serving import ErrorBody, ItemsResponse

router = APIRouter()

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such product (or deleted)"}
}


def _store(request: Request) -> LiveCatalog:
    store: LiveCatalog = request.app.state.catalog.store
    return store


async def _known(request: Request, product: str, stages: Stages, timeout: float) -> LiveItem | None:
    """The live record of `product`, else the served model's catalog entry; None if deleted or
    unknown to both. Raises StageError when only the candidate stage could tell."""
    store = _store(request)
    if (item := await store.get(product)) is not None:
        return item
    if await store.is_deleted(product):
        return None
    got = await stages.candidate.call(
        "POST", "/items", ItemsResponse, timeout, json={"products": [product]}
    )
    for c in got.items:
        return LiveItem(product=product, title=c.title, category=c.category, price=c.price)
    return None


def _not_found(product: str) -> JSONResponse:
    return JSONResponse({"detail": f"unknown product {product!r}"}, status_code=404)


def _stage_down(exc: StageError) -> JSONResponse:
    detail = f"the live catalog has no record and the model's catalog is unavailable ({exc})"
    return JSONResponse({"detail": detail}, status_code=503)


@router.get("/items", response_model=ItemPage)
async def list_items(
    request: Request,
    category: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    ] = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,20}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """A page of the live catalog (what was put or imported), in no particular order."""
    items, following = await _store(request).page(int(cursor or 0), limit, category)
    return ItemPage(items=items, cursor=str(following) if following else None)


@router.get("/items/{product}", response_model=LiveItem, responses=_NOT_FOUND)
async def get_item(
    product: IdPath, request: Request, stages: StagesDep, settings: SettingsDep
) -> Any:
    try:
        item = await _known(request, product, stages, settings.timeout_seconds)
    except StageError as exc:
        return _stage_down(exc)
    return item if item is not None else _not_found(product)


@router.put("/items/{product}", response_model=LiveItem)
async def put_item(product: IdPath, body: ItemIn, request: Request, _: AdminDep) -> Any:
    """Create or replace a product: in no answer within a second if not `available`; answers
    show its title and price; a product the model does not know is recommended by content."""
    item = LiveItem(product=product, **body.model_dump())
    await _store(request).put([item])
    return await _store(request).get(product)


@router.patch("/items/{product}", response_model=LiveItem, responses=_NOT_FOUND)
async def patch_item(
    product: IdPath,
    body: ItemPatch,
    request: Request,
    stages: StagesDep,
    settings: SettingsDep,
    _: AdminDep,
) -> Any:
    """Change only the fields given (e.g. `{"available": false}` when it sells out)."""
    try:
        item = await _known(request, product, stages, settings.timeout_seconds)
    except StageError as exc:
        return _stage_down(exc)
    if item is None:
        return _not_found(product)
    changed = item.model_copy(update=body.model_dump(exclude_unset=True))
    await _store(request).put([LiveItem.model_validate(changed.model_dump())])
    return await _store(request).get(product)


@router.delete("/items/{product}", response_model=ItemDeleted)
async def delete_item(product: IdPath, request: Request, _: AdminDep) -> Any:
    """Gone from every answer within a second, until it is put again."""
    had = await _store(request).delete(product)
    return ItemDeleted(product=product, had_record=had)
