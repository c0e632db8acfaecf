"""How every listing route writes its items (JSON straight from the models, with the version),
and how the recommending routes log what they served (attribution, online metrics)."""

from __future__ import annotations

import logging
import time

import redis
from fastapi.responses import Response
from pydantic import TypeAdapter

from services.gateway.pipeline import Answer
from services.gateway.popular import pick
from shared.live_catalog import CatalogMirror
from shared.observability import SERVED_LISTS, request_id
from shared.schemas.serving import ItemFilters, RecommendedItem
from shared.served import ServedItem, ServedList, ServedLog

log = logging.getLogger(__name__)

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


async def log_served(
    served: ServedLog,
    user: str,
    answer: Answer,
    arm: str | None = None,
    ms: float | None = None,
    drawn: tuple[float, int] | None = None,
    rid: str | None = None,
) -> None:
    """Record the answer as served under `rid`, by default the request's id (attribution,
    online metrics, its experiment arm with its time); an answer still goes out when Redis
    cannot take it."""
    rid = rid or request_id()
    if rid is None:
        return
    p, at = drawn or (None, None)  # the exploration draw's propensity and place, if any
    items = [ServedItem(product=i.product, position=n, score=i.score, reason=i.reason,
                        propensity=p if n == at else None)
             for n, i in enumerate(answer.items, start=1)]  # fmt: skip
    record = ServedList(id=rid, user=user, ts=time.time(), version=answer.version, arm=arm,
                        degraded=answer.degraded, items=items)  # fmt: skip
    try:
        await served.record(record, ms)
        SERVED_LISTS.labels(str(answer.version)).inc()
    except redis.RedisError as exc:
        log.warning("served list %s not logged, Redis unavailable: %s", rid, exc)
