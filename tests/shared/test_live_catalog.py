"""The live catalog on a real Redis: writes, the mirror following them, and the overlay every
answer goes through."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from shared.live_catalog import CatalogMirror, LiveCatalog, LiveItem
from shared.redis_conn import async_client
from shared.schemas.serving import RecommendedItem


def _item(product: str, price: float | None = 1.0) -> RecommendedItem:
    return RecommendedItem(
        product=product, score=1.0, price=price, age=None, title="old", reason="r"
    )


def test_the_mirror_follows_writes_and_overlays_answers(redis_url: str) -> None:
    prefix = f"cat-{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[str]:
        client = async_client(redis_url)
        store, mirror = LiveCatalog(client, prefix), CatalogMirror(client, prefix)
        await store.put([LiveItem(product="A", title="Lamp", price=3.0, category="home")])
        task = asyncio.create_task(mirror.run(poll_seconds=0.05))
        await asyncio.wait_for(mirror.loaded.wait(), 5)
        seen = [f"loaded:{sorted(mirror.items)}"]
        await store.put([LiveItem(product="B", available=False)])
        await store.delete("C")
        start = time.monotonic()
        while not (mirror.blocked("B") and mirror.blocked("C")):
            assert time.monotonic() - start < 1.0
            await asyncio.sleep(0.01)
        answer = mirror.overlay([_item("A"), _item("B"), _item("C"), _item("D")])
        seen.append(f"overlay:{[(i.product, i.title, i.price) for i in answer]}")
        assert await store.get("C") is None and await store.is_deleted("C")
        await store.put([LiveItem(product="C", title="Back")])
        while mirror.blocked("C"):
            await asyncio.sleep(0.01)
        items, cursor = await store.page(0, 10, "home")
        seen.append(f"page:{[i.product for i in items]}:{cursor}")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        return seen

    seen = asyncio.run(scenario())
    assert seen == [
        "loaded:['A']",
        "overlay:[('A', 'Lamp', 3.0), ('D', 'old', 1.0)]",  # B sold out, C deleted
        "page:['A']:0",
    ]


def test_catch_up_reads_the_new_products_an_answer_shows_before_the_next_poll(
    redis_url: str,
) -> None:
    """The candidate stage's mirror may be a poll ahead of the gateway's: a new product it shows
    is read at once, with its title, price and category; a known one costs no Redis call."""
    prefix = f"cat-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[tuple[str, str | None, str | None]], int, int]:
        client = async_client(redis_url)
        store, mirror = LiveCatalog(client, prefix), CatalogMirror(client, prefix)
        await store.put([LiveItem(product="NEW", title="Lamp", category="home", price=2.0)])
        new = _item("NEW", price=None).model_copy(update={"title": None, "reason": "cold_start"})
        old = _item("OLD")  # a model product: never looked up
        await mirror.catch_up([old, new])
        learnt = mirror.generation
        await mirror.catch_up([old, new])  # known now: nothing read again
        answer = mirror.overlay([old, new])
        await client.aclose()
        return [(i.product, i.title, i.category) for i in answer], learnt, mirror.generation

    answer, learnt, after = asyncio.run(scenario())
    assert answer == [("OLD", "old", None), ("NEW", "Lamp", "home")]
    assert learnt == 1 and after == 1


def test_an_empty_live_catalog_leaves_answers_alone(redis_url: str) -> None:
    mirror = CatalogMirror(async_client(redis_url), "nothing-here")
    items = [_item("A")]
    assert mirror.overlay(items) is items


def test_a_patch_may_clear_title_category_and_price_but_not_tags_or_availability() -> None:
    from pydantic import ValidationError

    from shared.live_catalog import ItemPatch

    cleared = ItemPatch.model_validate({"title": None, "category": None, "price": None})
    assert cleared.model_dump(exclude_unset=True) == {"title": None, "category": None,
                                                      "price": None}  # fmt: skip
    assert ItemPatch.model_validate({}).model_dump(exclude_unset=True) == {}
    for field in ("available", "tags"):
        with pytest.raises(ValidationError, match=field):
            ItemPatch.model_validate({field: None})
