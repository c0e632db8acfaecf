"""The one feature module: the trainer builds ranker rows with it, the ranker serves with it.

`build_feature_store` turns interactions before `as_of` into dense arrays; `pair_features` turns a
user and a candidate list into the feature matrix. Neither touches pandas on the request path.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from shared.datasets.base import Dataset
from shared.ml.interactions import DAY, IdMap, UserItemStats, user_item_stats

FEATURE_NAMES = [
    "cand_score",  # stage-one score (neighbour graph where there is one)
    "cand_rank",
    "cand_similarity",  # embedding k-NN score of the recent seeds
    # Relative to the list's best: raw scores grow with history length, which differs between
    # the ranker's training windows and serving; the ratio does not.
    "cand_score_rel",
    "cand_similarity_rel",
    "item_log_pop_all",
    "item_log_pop_30d",
    "item_log_pop_7d",
    "item_days_since_last",
    "item_days_since_first",
    "item_log_price",
    "item_category",
    "user_age",
    "user_segment",
    "user_log_activity",
    "user_days_since_last",
    "user_mean_log_price",
    "price_vs_user",  # item log price minus the user's usual log price
    "user_category_share",  # share of the user's history in the item's category
    "age_vs_item_buyers",  # |user age - mean age of the item's buyers|
    "user_item_count",  # repeat interest
    "user_item_days_since",
    # How many took the item within 3 / 14 days of the user's last interaction (log): what was
    # taken while the user was active, whenever that was (a random split's held-out items sit
    # in the user's own active period; a returning shopper's season).
    "item_log_pop_near_user_3d",
    "item_log_pop_near_user_14d",
]
NEAR_USER_DAYS = {"item_log_pop_near_user_3d": 3.0, "item_log_pop_near_user_14d": 14.0}
CATEGORICAL = ["item_category", "user_segment"]
NO_HISTORY_DAYS = 10_000.0


@dataclass(frozen=True)
class FeatureStore:
    as_of: float
    item_log_pop_all: np.ndarray
    item_log_pop_30d: np.ndarray
    item_log_pop_7d: np.ndarray
    item_days_since_last: np.ndarray
    item_days_since_first: np.ndarray
    item_log_price: np.ndarray
    item_category: np.ndarray
    item_buyer_age: np.ndarray
    user_age: np.ndarray
    user_segment: np.ndarray
    user_log_activity: np.ndarray
    user_days_since_last: np.ndarray
    user_mean_log_price: np.ndarray
    user_category_share: np.ndarray  # (n_users, n_categories)
    ui_indptr: np.ndarray
    ui_indices: np.ndarray
    ui_count: np.ndarray
    ui_strength: np.ndarray
    ui_last_ts: np.ndarray
    interaction_minutes: np.ndarray  # item position << 32 | minute of each interaction, sorted

    @property
    def user_items(self) -> UserItemStats:
        return UserItemStats(
            self.ui_indptr, self.ui_indices, self.ui_count, self.ui_strength, self.ui_last_ts
        )

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureStore:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            values = {f.name: npz[f.name] for f in fields(cls)}
        values["as_of"] = float(values["as_of"])
        return cls(**values)


def _codes(values: pd.Series, vocabulary: list[str]) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(vocabulary)}
    return np.array([lookup.get(v, -1) for v in values.fillna("").astype(str)], dtype=np.float32)


def build_feature_store(
    data: Dataset,
    users: IdMap,
    items: IdMap,
    categories: list[str],
    segments: list[str],
    as_of: float,
) -> FeatureStore:
    """Features from interactions strictly before `as_of`, where the label window starts."""
    ints = data.interactions[data.interactions["ts"] < as_of]
    u = users.positions(ints["user_id"].tolist())
    i = items.positions(ints["product_id"].tolist())
    keep = (u >= 0) & (i >= 0)
    u, i = u[keep], i[keep]
    ts = ints["ts"].to_numpy(dtype=np.float64)[keep]
    strength = ints["rating"].to_numpy(dtype=np.float64)[keep]
    n_u, n_i = len(users), len(items)
    age_days = (as_of - ts) / DAY

    def item_count(mask: np.ndarray) -> np.ndarray:
        return np.log1p(np.bincount(i[mask], minlength=n_i)).astype(np.float32)

    last_i = np.full(n_i, -np.inf)
    np.maximum.at(last_i, i, ts)
    first_i = np.full(n_i, np.inf)
    np.minimum.at(first_i, i, ts)
    last_u = np.full(n_u, -np.inf)
    np.maximum.at(last_u, u, ts)

    item_meta = data.items.set_index("product_id").reindex(items.ids)
    price = item_meta["price"].to_numpy(dtype=np.float64)
    log_price = np.log1p(np.where(price > 0, price, np.nan)).astype(np.float32)
    item_cat = _codes(item_meta["category"], categories)
    user_meta = data.users.set_index("user_id").reindex(users.ids)
    user_age = user_meta["age"].to_numpy(dtype=np.float32)

    counts_u = np.bincount(u, minlength=n_u).astype(np.float64)
    lp = np.nan_to_num(log_price[i].astype(np.float64), nan=0.0)
    has_price = ~np.isnan(log_price[i])
    price_sum = np.bincount(u, weights=lp, minlength=n_u)
    price_n = np.bincount(u, weights=has_price.astype(np.float64), minlength=n_u)
    n_cat = max(len(categories), 1)
    cat_of = item_cat[i].astype(np.int64)
    share = np.zeros((n_u, n_cat), dtype=np.float64)
    ok = cat_of >= 0
    np.add.at(share, (u[ok], cat_of[ok]), 1.0)
    share /= np.maximum(counts_u, 1.0)[:, None]
    ua = user_age[u].astype(np.float64)
    has_age = ~np.isnan(ua)
    age_sum = np.bincount(i[has_age], weights=ua[has_age], minlength=n_i)
    age_n = np.bincount(i[has_age], minlength=n_i)

    stats = user_item_stats(u, i, strength, ts, n_u, n_i)
    minutes = np.clip(ts // 60, 0, 2**32 - 1).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return FeatureStore(
            as_of=as_of,
            item_log_pop_all=item_count(np.ones_like(i, dtype=bool)),
            item_log_pop_30d=item_count(age_days <= 30),
            item_log_pop_7d=item_count(age_days <= 7),
            item_days_since_last=np.where(
                np.isfinite(last_i), (as_of - last_i) / DAY, NO_HISTORY_DAYS
            ).astype(np.float32),
            item_days_since_first=np.where(
                np.isfinite(first_i), (as_of - first_i) / DAY, -1.0
            ).astype(np.float32),
            item_log_price=log_price,
            item_category=item_cat,
            item_buyer_age=np.where(age_n > 0, age_sum / np.maximum(age_n, 1), np.nan).astype(
                np.float32
            ),
            user_age=user_age,
            user_segment=_codes(user_meta["segment"], segments),
            user_log_activity=np.log1p(counts_u).astype(np.float32),
            user_days_since_last=np.where(
                np.isfinite(last_u), (as_of - last_u) / DAY, NO_HISTORY_DAYS
            ).astype(np.float32),
            user_mean_log_price=np.where(
                price_n > 0, price_sum / np.maximum(price_n, 1), np.nan
            ).astype(np.float32),
            user_category_share=share.astype(np.float32),
            ui_indptr=stats.indptr,
            ui_indices=stats.indices,
            ui_count=stats.count,
            ui_strength=stats.strength,
            ui_last_ts=stats.last_ts,
            interaction_minutes=np.sort((i.astype(np.int64) << 32) | minutes),
        )


COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class LiveItems:
    """A user's interactions since the store's `as_of` (served live events of the training
    data's kind): per item position, how many and the last one's time (epoch seconds)."""

    items: np.ndarray
    counts: np.ndarray
    last_ts: np.ndarray


def pair_features(
    store: FeatureStore,
    user: int,
    items: np.ndarray,
    cand_scores: np.ndarray,
    cand_similarity: np.ndarray | None = None,
    live: LiveItems | None = None,
) -> np.ndarray:
    """Feature matrix (len(items), len(FEATURE_NAMES)) for one user (-1 = unknown); `live`
    interactions count as history in the user's activity, recency and repeat features."""
    out = _stored_pair_features(store, user, items, cand_scores, cand_similarity)
    if live is not None and len(live.items):
        _add_live(out, store.as_of, items, live)
    _near_user(out, store, items)
    return out


def _near_user(out: np.ndarray, store: FeatureStore, items: np.ndarray) -> None:
    """The `NEAR_USER_DAYS` features, around the user's last interaction as `out` has it (live
    ones included); NaN for a user without any."""
    days = float(out[0, COL["user_days_since_last"]]) if len(out) else NO_HISTORY_DAYS
    if days >= NO_HISTORY_DAYS:
        return
    minute = int((store.as_of - days * DAY) // 60)
    base = items.astype(np.int64) << 32
    for name, width in NEAR_USER_DAYS.items():
        w = int(width * 24 * 60)
        lo = np.searchsorted(store.interaction_minutes, base | max(minute - w, 0), side="left")
        hi = np.searchsorted(
            store.interaction_minutes, base | min(minute + w, 2**32 - 1), side="right"
        )
        out[:, COL[name]] = np.log1p(hi - lo)


def _add_live(out: np.ndarray, as_of: float, items: np.ndarray, live: LiveItems) -> None:
    # Times after `as_of` are clipped to it: to the ranker they are as recent as history gets.
    days = np.maximum((as_of - live.last_ts.astype(np.float64)) / DAY, 0.0)
    at = COL["user_days_since_last"]
    out[:, at] = np.minimum(out[:, at], float(days.min()))
    at = COL["user_log_activity"]
    out[:, at] = np.log1p(np.expm1(out[:, at].astype(np.float64)) + float(live.counts.sum()))
    order = np.argsort(live.items, kind="stable")
    taken = live.items[order]
    pos = np.minimum(np.searchsorted(taken, items), len(taken) - 1)
    hit = taken[pos] == items
    if hit.any():
        which = order[pos[hit]]
        out[hit, COL["user_item_count"]] += live.counts[which]
        at = COL["user_item_days_since"]
        out[hit, at] = np.minimum(out[hit, at], days[which])


def _stored_pair_features(
    store: FeatureStore,
    user: int,
    items: np.ndarray,
    cand_scores: np.ndarray,
    cand_similarity: np.ndarray | None,
) -> np.ndarray:
    n = len(items)
    out = np.full((n, len(FEATURE_NAMES)), np.nan, dtype=np.float32)

    def put(name: str, values: np.ndarray | float) -> None:
        out[:, COL[name]] = values

    put("cand_score", cand_scores)
    put("cand_rank", np.arange(n, dtype=np.float32))
    if n:
        put("cand_score_rel", cand_scores / max(float(np.max(cand_scores)), 1e-9))
    if cand_similarity is not None:
        put("cand_similarity", cand_similarity)
        if n:
            put("cand_similarity_rel", cand_similarity / max(float(np.max(cand_similarity)), 1e-9))
    put("item_log_pop_all", store.item_log_pop_all[items])
    put("item_log_pop_30d", store.item_log_pop_30d[items])
    put("item_log_pop_7d", store.item_log_pop_7d[items])
    put("item_days_since_last", store.item_days_since_last[items])
    put("item_days_since_first", store.item_days_since_first[items])
    put("item_log_price", store.item_log_price[items])
    cats = store.item_category[items]
    put("item_category", cats)
    put("user_item_count", 0.0)
    put("user_item_days_since", NO_HISTORY_DAYS)
    if user < 0:
        put("user_log_activity", 0.0)
        put("user_days_since_last", NO_HISTORY_DAYS)
        return out
    put("user_age", store.user_age[user])
    put("user_segment", store.user_segment[user])
    put("user_log_activity", store.user_log_activity[user])
    put("user_days_since_last", store.user_days_since_last[user])
    put("user_mean_log_price", store.user_mean_log_price[user])
    put("price_vs_user", store.item_log_price[items] - store.user_mean_log_price[user])
    c = cats.astype(np.int64)
    put(
        "user_category_share",
        np.where(c >= 0, store.user_category_share[user, np.maximum(c, 0)], np.nan),
    )
    put("age_vs_item_buyers", np.abs(store.user_age[user] - store.item_buyer_age[items]))
    sl = slice(int(store.ui_indptr[user]), int(store.ui_indptr[user + 1]))
    seen = store.ui_indices[sl]  # sorted item positions of this user's history
    if len(seen):
        pos = np.minimum(np.searchsorted(seen, items), len(seen) - 1)
        hit = seen[pos] == items
        out[hit, COL["user_item_count"]] = store.ui_count[sl][pos[hit]]
        out[hit, COL["user_item_days_since"]] = (store.as_of - store.ui_last_ts[sl][pos[hit]]) / DAY
    return out


def user_age(store: FeatureStore, user: int) -> float | None:
    """The age of user position `user` (-1: unknown user), None where the data has none."""
    if user < 0:
        return None
    age = float(store.user_age[user])
    return None if math.isnan(age) else age
