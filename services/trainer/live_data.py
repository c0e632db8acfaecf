"""What the shop wrote since the dataset was made, in the training data: the live catalog and
users' profiles."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from shared.datasets.base import TAG_SEPARATOR, Dataset
from shared.live_catalog import LiveCatalog, LiveItem
from shared.redis_conn import async_client, sync_client
from shared.user_keys import UserKeys
from shared.users import UserRecord

log = logging.getLogger(__name__)


def read_live_catalog(redis_url: str, key_prefix: str) -> tuple[dict[str, LiveItem], set[str]]:
    """Every live record and every deleted id."""

    async def read() -> tuple[dict[str, LiveItem], set[str]]:
        client = async_client(redis_url)
        try:
            return await LiveCatalog(client, key_prefix).all()
        finally:
            await client.aclose()

    return asyncio.run(read())


def with_live_catalog(data: Dataset, items: dict[str, LiveItem], deleted: set[str]) -> Dataset:
    """The dataset with the live catalog's word: its titles, categories, prices and tags over
    the dataset's, its new products added (no interactions yet: the content index makes them
    reachable), deleted products gone with their interactions. Sold-out products stay: they
    may come back, and serving leaves them out while they are unavailable."""
    if not items and not deleted:
        return data
    catalog = data.items.set_index("product_id")
    rows = pd.DataFrame(
        {
            "title": [i.title or "" for i in items.values()],
            "category": [i.category or "" for i in items.values()],
            "price": [np.nan if i.price is None else i.price for i in items.values()],
            "tags": [TAG_SEPARATOR.join(i.tags) for i in items.values()],
        },
        index=pd.Index(list(items), name="product_id"),
    )
    if "tags" not in catalog.columns:
        rows = rows.drop(columns="tags")
    merged = rows.combine_first(catalog) if len(rows) else catalog
    merged = merged.drop(index=list(deleted & set(merged.index)))
    ints = data.interactions
    if deleted:
        ints = ints[~ints["product_id"].isin(deleted)].reset_index(drop=True)
    new = len(set(items) - set(catalog.index))
    log.info(
        "live catalog: %d records (%d new products), %d deleted products",
        len(items),
        new,
        len(deleted),
    )
    return replace(data, interactions=ints, items=merged.reset_index())


def read_profiles(redis_url: str, key_prefix: str) -> list[UserRecord]:
    client = sync_client(redis_url)
    try:
        raw: Any = client.hgetall(UserKeys(key_prefix).profiles)
    finally:
        client.close()
    return [UserRecord.model_validate_json(v) for v in raw.values()]


def with_profiles(data: Dataset, profiles: list[UserRecord]) -> Dataset:
    """The dataset's users with the profiles' age and segment over theirs (known values only),
    and profiled users it did not have added."""
    if not profiles:
        return data
    users = data.users.set_index("user_id")
    rows = pd.DataFrame(
        {
            "age": [np.nan if p.age is None else p.age for p in profiles],
            "segment": [p.segment for p in profiles],
        },
        index=pd.Index([p.user for p in profiles], name="user_id"),
    )
    merged = rows.combine_first(users)
    return replace(data, users=merged.reset_index())
