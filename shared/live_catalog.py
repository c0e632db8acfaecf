"""The live catalog: what the shop says about its products now, beside the immutable versions.

A model version freezes the catalog it was trained on; a shop's products sell out, change price
and appear every day. Writes (`PUT/PATCH/DELETE /items/{id}`, `recsys catalog import`) go to
Redis (persisted with the rest): a hash of item records, a set of deleted ids, and a bounded
stream of changed ids. Every serving process keeps a `CatalogMirror`: loaded whole at start, then
following the stream (polled every POLL_SECONDS), so a write reaches every answer within a
fraction of a second and no request waits for Redis. When Redis is away the mirror keeps what it
knew, and loads everything again once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import redis
import redis.asyncio as aioredis
from pydantic import Field, FiniteFloat

from shared.ml.stage_one.candidate_list import COLD_START
from shared.redis_conn import stop_if_cancelled, text
from shared.schemas.base import Id, Strict
from shared.schemas.serving import RecommendedItem

log = logging.getLogger(__name__)
CHANGES_MAX = 100_000
RETRY_SECONDS = 1.0
# How often each process looks for catalog changes: a write is in every answer within this.
POLL_SECONDS = 0.2

Text = Field(default=None, min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$")


class ItemIn(Strict):
    """A product as the shop describes it (the body of `PUT /items/{id}`)."""

    title: str | None = Text
    category: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    )
    tags: list[str] = Field(default_factory=list, max_length=50)
    price: FiniteFloat | None = Field(default=None, ge=0, strict=True)
    available: bool = Field(default=True, strict=True)


class ItemPatch(Strict):
    """`PATCH /items/{id}`: only the fields given change."""

    title: str | None = Text
    category: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    )
    # Not nullable (title, category and price may be cleared with null; a product always has
    # tags, maybe none, and an availability): schemathesis found `"available": null` answered
    # 500. Their defaults never apply: only the fields sent are read (exclude_unset).
    tags: list[str] = Field(default_factory=list, max_length=50)
    price: FiniteFloat | None = Field(default=None, ge=0, strict=True)
    available: bool = Field(default=True, strict=True)


class LiveItem(ItemIn):
    """A product of the live catalog, as stored and answered."""

    product: Id
    updated_at: float = 0.0  # unix seconds of the last write


class ItemPage(Strict):
    """`GET /items`: a page of the live catalog; pass `cursor` back for the next (null: done)."""

    items: list[LiveItem]
    cursor: str | None


class ItemDeleted(Strict):
    product: str
    deleted: bool = True
    had_record: bool  # whether the live catalog had a record of it (else only the model did)


class LiveCatalog:
    """Reads and writes of the live catalog in Redis."""

    def __init__(self, client: aioredis.Redis, key_prefix: str) -> None:
        # Any: redis-py's command annotations change between releases (sync/async unions)
        self._r: Any = client
        self.items_key = f"{key_prefix}:catalog:items"
        self.deleted_key = f"{key_prefix}:catalog:deleted"
        self.changes_key = f"{key_prefix}:catalog:changes"

    async def put(self, items: Iterable[LiveItem]) -> int:
        """Store whole records (one transaction for the lot); returns how many."""
        now, n = time.time(), 0
        async with self._r.pipeline(transaction=True) as pipe:
            for item in items:
                record = item.model_copy(update={"updated_at": now})
                pipe.hset(self.items_key, item.product, record.model_dump_json())
                pipe.srem(self.deleted_key, item.product)
                pipe.xadd(
                    self.changes_key,
                    {"product": item.product},
                    maxlen=CHANGES_MAX,
                    approximate=True,
                )
                n += 1
            if n:
                await pipe.execute()
        return n

    async def get(self, product: str) -> LiveItem | None:
        raw = await self._r.hget(self.items_key, product)
        return None if raw is None else LiveItem.model_validate_json(raw)

    async def is_deleted(self, product: str) -> bool:
        return bool(await self._r.sismember(self.deleted_key, product))

    async def delete(self, product: str) -> bool:
        """Delete a product for good (until it is put again); True if it had a live record."""
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hdel(self.items_key, product)
            pipe.sadd(self.deleted_key, product)
            pipe.xadd(self.changes_key, {"product": product}, maxlen=CHANGES_MAX, approximate=True)
            removed, *_ = await pipe.execute()
        return bool(removed)

    async def page(
        self, cursor: int, count: int, category: str | None
    ) -> tuple[list[LiveItem], int]:
        """One HSCAN step: up to about `count` records (of `category`) and the next cursor."""
        items: list[LiveItem] = []
        while True:
            cursor, found = await self._r.hscan(self.items_key, cursor, count=count)
            for raw in found.values():
                item = LiveItem.model_validate_json(raw)
                if category is None or item.category == category:
                    items.append(item)
            if cursor == 0 or len(items) >= count:
                return items, int(cursor)

    async def all(self) -> tuple[dict[str, LiveItem], set[str]]:
        """Every record and every deleted id (the trainer's and the mirror's full load)."""
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.items_key)
            pipe.smembers(self.deleted_key)
            raw, deleted = await pipe.execute()
        items = {text(k): LiveItem.model_validate_json(v) for k, v in raw.items()}
        return items, {text(d) for d in deleted}


class CatalogMirror:
    """The live catalog in this process's memory, kept current from the change stream."""

    def __init__(self, client: aioredis.Redis, key_prefix: str) -> None:
        self._r: Any = client
        self.store = LiveCatalog(client, key_prefix)
        self.items: dict[str, LiveItem] = {}
        self.deleted: set[str] = set()
        self.generation = 0  # moves on every applied change: derived data is rebuilt after
        # Moves when a product may newly appear in answers (added, restored, available again, or
        # a full load): what an answer computed before it cannot contain. `opened_at` is when
        # (time.monotonic()); price, title and removals are overlaid on every answer instead.
        self.opened = 0
        self.opened_at = -math.inf
        self.loaded = asyncio.Event()

    def blocked(self, product: str) -> bool:
        """Whether no answer may show `product` (deleted, or not available)."""
        if product in self.deleted:
            return True
        item = self.items.get(product)
        return item is not None and not item.available

    def overlay(self, items: list[RecommendedItem]) -> list[RecommendedItem]:
        """`items` as the live catalog says now: blocked ones left out, the latest title, price
        and category on the others."""
        if not self.items and not self.deleted:
            return items
        out: list[RecommendedItem] = []
        for item in items:
            if self.blocked(item.product):
                continue
            live = self.items.get(item.product)
            if live is not None:
                item = item.model_copy(
                    update={"title": live.title, "price": live.price, "category": live.category}
                )
            out.append(item)
        return out

    async def catch_up(self, items: list[RecommendedItem]) -> None:
        """Read now the new products (`cold_start`: not in the model) of `items` that this
        mirror has not seen yet: the stage that chose them follows the catalog with its own
        mirror, which may be a poll ahead of this one, and an answer must not show a new product
        without its title, price and category (nor leave it out of a category cap). Steady state
        costs nothing: only a product this mirror does not know makes a Redis call."""
        unseen = {i.product for i in items if i.reason == COLD_START}
        unseen -= self.items.keys() | self.deleted
        if not unseen:
            return
        try:
            await self._apply(unseen)
        except redis.RedisError as exc:  # the answer goes out as the model knows it
            log.info("new products not read from the live catalog: %s", exc)

    def blocked_ids(self) -> list[str]:
        unavailable = [p for p, item in self.items.items() if not item.available]
        return [*self.deleted, *unavailable]

    async def _load(self) -> bytes | str:
        """Everything, and the stream id to follow from (taken first: nothing is missed)."""
        last = await self._r.xrevrange(self.store.changes_key, count=1)
        since = last[0][0] if last else "0-0"
        self.items, self.deleted = await self.store.all()
        if self.generation:  # a load again (after Redis was away): anything may have opened
            self._open()
        self.generation += 1
        self.loaded.set()
        return since

    async def _apply(self, products: set[str]) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            for product in products:
                pipe.hget(self.store.items_key, product)
                pipe.sismember(self.store.deleted_key, product)
            answers = await pipe.execute()
        opened = False
        for product, raw, deleted in zip(products, answers[::2], answers[1::2], strict=True):
            shown_before = product in self.items and not self.blocked(product)
            if raw is None:
                self.items.pop(product, None)
            else:
                self.items[product] = LiveItem.model_validate_json(raw)
            if deleted:
                self.deleted.add(product)
            else:
                self.deleted.discard(product)
            if not shown_before and product in self.items and not self.blocked(product):
                opened = True
        self.generation += 1
        if opened:
            self._open()

    def _open(self) -> None:
        self.opened += 1
        self.opened_at = time.monotonic()

    async def run(self, poll_seconds: float = POLL_SECONDS) -> None:
        """Load, then follow the change stream forever; after a Redis failure, load again.

        Cancelled, it stops at the next step even if a Redis call swallowed the cancellation
        (redis-py's async client may, when the cancellation lands inside a read)."""
        while True:
            try:
                since = await self._load()
                while True:
                    stop_if_cancelled()
                    got = await self._r.xread({self.store.changes_key: since}, count=1000)
                    for _, entries in got:
                        since = entries[-1][0]
                        products = {text(fields[b"product"]) for _, fields in entries}
                        await self._apply(products)
                    if not got:
                        await asyncio.sleep(poll_seconds)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                stop_if_cancelled()
                log.warning("live catalog not followed (%s); retrying", exc)
            except Exception:  # a bad record must not stop the mirror for good
                log.exception("live catalog mirror failed; reloading")
            await asyncio.sleep(RETRY_SECONDS)
