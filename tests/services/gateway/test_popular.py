"""The gateway's popular list: filtered like the request, kept when the candidate stage fails."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.breaker import CircuitBreaker
from services.gateway.downstream import Stage, new_session
from services.gateway.popular import PopularCache, PopularList, pick
from shared.redis_conn import free_port
from shared.schemas.serving import ItemFilters, RecommendedItem


def _item(product: str, category: str | None, price: float | None) -> RecommendedItem:
    return RecommendedItem(
        product=product, score=1.0, price=price, age=None, category=category, reason="popular"
    )


ITEMS = [
    _item("P1", "books", 10.0),
    _item("P2", "home", 50.0),
    _item("P3", "books", None),
    _item("P4", "books", 30.0),
    _item("P5", "toys", 5.0),
]


def test_pick_keeps_order_and_k() -> None:
    assert [i.product for i in pick(ITEMS, 3, ItemFilters())] == ["P1", "P2", "P3"]


def test_pick_applies_the_request_filters() -> None:
    def ids(**f: object) -> list[str]:
        return [i.product for i in pick(ITEMS, 10, ItemFilters.model_validate(f))]

    assert ids(category=["books"]) == ["P1", "P3", "P4"]
    assert ids(max_price=30) == ["P1", "P4", "P5"]  # unknown prices never pass a bound
    assert ids(min_price=10, max_price=30, exclude=["P1"]) == ["P4"]
    assert ids(category=["garden"]) == []


def test_a_failed_refresh_keeps_the_cached_list() -> None:
    async def go() -> tuple[bool, PopularList | None]:
        async with new_session() as http:
            dead = Stage(
                "candidate",
                f"http://127.0.0.1:{free_port()}",
                http,
                CircuitBreaker("popular-test", 3, 1),
            )
            cache = PopularCache(dead, size=10, refresh_seconds=30, timeout=0.5)
            cache.current = PopularList(version=4, items=ITEMS, fetched_at=0.0)
            return await cache.refresh(), cache.current

    fetched, kept = asyncio.run(go())
    assert not fetched and kept is not None and kept.version == 4 and kept.items == ITEMS


def test_the_refresher_stops_when_cancelled_just_as_a_new_version_wakes_it() -> None:
    async def go() -> None:
        async with new_session() as http:
            dead = Stage("candidate", "http://127.0.0.1:1", http, CircuitBreaker("wake", 3, 1))
            cache = PopularCache(dead, size=10, refresh_seconds=30, timeout=0.5)
            cache.current = PopularList(version=4, items=ITEMS, fetched_at=0.0)
            refreshed = asyncio.Event()

            async def refresh() -> bool:
                refreshed.set()
                return True

            cache.refresh = refresh  # type: ignore[method-assign]
            task = asyncio.create_task(cache.run())
            await refreshed.wait()  # the refresher now waits to be woken
            cache.seen_version(5)  # woken by a new version ...
            task.cancel()  # ... in the same instant as the gateway shuts down
            with pytest.raises(asyncio.CancelledError):
                async with asyncio.timeout(10):  # a bound on a hang, not a timing check
                    await task

    asyncio.run(go())
