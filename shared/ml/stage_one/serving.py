"""The candidate stage as the candidate service runs it: a version's catalog, features and index,
answering with a `CandidateListPayload` per user (history, live events, filters, cold start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from shared.live_catalog import LiveItem
from shared.ml.catalog import Catalog
from shared.ml.stage_one.candidate_list import COLD_START, CandidateList
from shared.ml.stage_one.content import ContentIndex
from shared.ml.stage_one.index import CandidateIndex
from shared.ml.stage_one.new_products import NewProducts, tokens
from shared.ml.stage_one.search import SearchResult, generate_candidates
from shared.ml.stage_two.features import FeatureStore, user_age
from shared.ml.version_artifacts import CATALOG, CONTENT, FEATURES, INDEX
from shared.schemas.serving import ItemFilters


class LiveEvent(NamedTuple):
    """What a user did since the model was trained, as the candidate stage uses it."""

    product: str
    weight: float  # the event type's configured weight
    exclude: bool = True  # the user has it now (e.g. bought it): do not propose it again


def segment_popularity(store: FeatureStore, n_segments: int) -> np.ndarray:
    """(segments x items) how many users of each segment took each item, from the features."""
    out = np.zeros((max(n_segments, 1), len(store.item_log_pop_all)), dtype=np.float32)
    users = np.repeat(np.arange(len(store.ui_indptr) - 1), np.diff(store.ui_indptr))
    seg = store.user_segment[users].astype(np.int64)
    ok = seg >= 0
    np.add.at(out, (seg[ok], store.ui_indices[ok]), 1.0)
    return out


class CandidateStage:
    def __init__(
        self,
        catalog: Catalog,
        store: FeatureStore,
        index: CandidateIndex,
        content: ContentIndex | None = None,
    ) -> None:
        self.catalog, self.store, self.index = catalog, store, index
        self.content = content if content is not None else ContentIndex.empty(len(catalog.items))
        self.history = store.user_items
        self.segment_popularity = segment_popularity(store, len(catalog.segment_vocab))
        self._segments = {name: i for i, name in enumerate(catalog.segment_vocab)}
        # Filter columns as arrays once per load, not per request; `set_live` overrides them.
        self._trained_category = np.array(catalog.categories, dtype=object)
        self._trained_price = np.array(
            [np.nan if p is None else p for p in catalog.prices], dtype=np.float64
        )
        self._item_category, self._item_price = self._trained_category, self._trained_price
        self.catalog_categories = self._trained_category  # as trained, for similar items
        self._blocked: np.ndarray | None = None  # items no answer may show (live catalog)
        self.new_products = NewProducts([], [], [], [])
        self.live_generation = -1  # which state of the live catalog `set_live` applied
        # Ids and reasons as object arrays: a request picks its own with one fancy index. The
        # last reason, "popular", is what seed -1 (a popularity top-up) indexes.
        self._item_ids = np.array(catalog.items.ids, dtype=object)
        self._reasons = np.array(
            [*(f"similar_to:{i}" for i in catalog.items.ids), "popular"], dtype=object
        )

    @classmethod
    def from_artifacts(cls, a: dict[str, bytes]) -> CandidateStage:
        return cls(
            Catalog.from_bytes(a[CATALOG]),
            FeatureStore.from_bytes(a[FEATURES]),
            CandidateIndex.from_bytes(a[INDEX]),
            ContentIndex.from_bytes(a[CONTENT]),
        )

    def set_live(
        self, items: Mapping[str, LiveItem], blocked: Sequence[str], generation: int
    ) -> None:
        """What the live catalog says now over this version's items: `blocked` ones (deleted,
        unavailable) pass no filter, price and category filters read the live values, and the
        available products this version does not know become `new_products`."""
        positions = self.catalog.items.positions(list(blocked))
        mask = np.zeros(len(self.catalog.items), dtype=bool)
        mask[positions[positions >= 0]] = True
        self._blocked = mask if mask.any() else None
        known = list(items)
        at = self.catalog.items.positions(known)
        price, category = self._trained_price.copy(), self._trained_category.copy()
        for product, i in zip(known, at.tolist(), strict=True):
            if i >= 0:
                item = items[product]
                price[i] = np.nan if item.price is None else item.price
                category[i] = item.category
        self._item_price, self._item_category = price, category
        new = [items[p] for p, i in zip(known, at.tolist(), strict=True) if i < 0]
        new = [item for item in new if item.available]
        self.new_products = NewProducts(
            [i.product for i in new],
            [tokens(i.title, i.category, i.tags) for i in new],
            [i.category for i in new],
            [i.price for i in new],
        )
        self.live_generation = generation

    def profile(self, user: int, live: Sequence[LiveEvent], n_seeds: int = 20) -> dict[str, float]:
        """The words of what the user took lately (title words, categories), weighted: how new
        products are matched to them."""
        seeds: list[tuple[int, float]] = []
        if user >= 0:
            sl = self.history.row(user)
            recent = np.argsort(-self.history.last_ts[sl], kind="stable")[:n_seeds]
            seeds += [(int(self.history.indices[sl][j]), 1.0) for j in recent.tolist()]
        at = self.catalog.items.positions([e.product for e in live])
        seeds += [(i, e.weight) for i, e in zip(at.tolist(), live, strict=True) if i >= 0]
        profile: dict[str, float] = {}
        cat = self.catalog
        for i, weight in seeds:
            for t in tokens(cat.titles[i], cat.categories[i]):
                profile[t] = profile.get(t, 0.0) + weight
        return profile

    def user_age(self, user_id: str) -> float | None:
        return user_age(self.store, self.catalog.users.get(user_id))

    def allowed(self, filters: ItemFilters, hidden: Sequence[str] = ()) -> np.ndarray | None:
        """Boolean mask of items passing `filters` and not `hidden` (products the user hid);
        None when nothing is filtered."""
        f, cat = filters, self.catalog
        if (
            f.category is None
            and f.min_price is None
            and f.max_price is None
            and not f.exclude
            and not hidden
        ):
            return None if self._blocked is None else ~self._blocked
        mask = np.ones(len(cat.items), dtype=bool)
        if self._blocked is not None:
            mask &= ~self._blocked
        if f.category is not None:
            mask &= np.isin(self._item_category, f.category)
        if f.min_price is not None or f.max_price is not None:
            lo = -np.inf if f.min_price is None else f.min_price
            hi = np.inf if f.max_price is None else f.max_price
            with np.errstate(invalid="ignore"):
                mask &= (self._item_price >= lo) & (
                    self._item_price <= hi
                )  # unknown prices never satisfy a bound
        for products in (f.exclude, hidden):
            excluded = cat.items.positions(list(products))
            mask[excluded[excluded >= 0]] = False
        return mask

    def positions(
        self,
        user: int,
        n: int,
        live: Sequence[LiveEvent] = (),
        allowed: np.ndarray | None = None,
        exclude_history: bool = True,
    ) -> SearchResult:
        """Candidates for a user position, seeded by their history and `live` recent events."""
        known = [(self.catalog.items.get(e.product), e) for e in live]
        known = [(i, e) for i, e in known if i >= 0]  # products this version never saw
        return generate_candidates(
            self.index,
            self.history,
            user,
            self.store.as_of,
            n,
            live_items=np.array([i for i, _ in known], dtype=np.int64),
            live_weights=np.array([e.weight for _, e in known], dtype=np.float64),
            allowed=allowed,
            exclude_history=exclude_history,
            live_exclude=np.array([e.exclude for _, e in known], dtype=bool),
        )

    def fresh(
        self,
        user: int,
        live: Sequence[LiveEvent],
        n: int,
        allowed: np.ndarray | None,
        taken: np.ndarray,
    ) -> CandidateList:
        """Up to n catalog items nobody took yet whose content reads like what the user took."""
        if n <= 0 or not len(self.content.fresh):
            return CandidateList()
        items, weights = [], []
        if user >= 0:
            sl = self.history.row(user)
            items.append(self.history.indices[sl])
            weights.append(np.log1p(self.history.strength[sl]))
        live_pos = self.catalog.items.positions([e.product for e in live])
        ok = live_pos >= 0
        items.append(live_pos[ok])
        weights.append(np.array([e.weight for e in live], dtype=np.float64)[ok])
        seeds = np.concatenate(items).astype(np.int64)
        if not len(seeds):
            return CandidateList()
        mask = np.ones(len(self.catalog.items), dtype=bool) if allowed is None else allowed.copy()
        mask[taken] = False
        found, sims = self.content.matches(seeds, np.concatenate(weights), n, mask)
        picked, scores = self._item_ids[found].tolist(), sims.tolist()
        return CandidateList(picked, scores, list(scores), [COLD_START] * len(picked))

    def cold_start(
        self, user: int, segment: str | None, n: int, allowed: np.ndarray | None
    ) -> CandidateList | None:
        """For a user without history: what their segment (or country, occupation…) takes most,
        when the segment is known from the user table or the request; None otherwise."""
        seg = self._segments.get(segment, -1) if segment else -1
        if seg < 0 and user >= 0:
            seg = int(self.store.user_segment[user]) if self.store.user_segment[user] >= 0 else -1
        if seg < 0:
            return None
        counts = self.segment_popularity[seg]
        order = np.argsort(-counts, kind="stable")
        ok = counts[order] > 0
        if allowed is not None:
            ok &= allowed[order]
        items = order[ok][:n]
        fill = self.index.popular(n - len(items), items, allowed)
        name = self.catalog.segment_vocab[seg]
        picked = self._item_ids[np.concatenate([items, fill])].tolist()
        scores = counts[items].tolist() + [0.0] * len(fill)
        reasons = [f"popular_in:{name}"] * len(items) + ["popular"] * len(fill)
        return CandidateList(picked, scores, [0.0] * len(picked), reasons)

    def candidates(
        self,
        user_id: str,
        n: int,
        live: Sequence[LiveEvent] = (),
        filters: ItemFilters | None = None,
        segment: str | None = None,
        exclude_history: bool = True,
        fresh: int = 0,
        hidden: Sequence[str] = (),
    ) -> tuple[bool, CandidateList]:
        """(known user, candidates): neighbours of what the user took, best first, with up to
        `fresh` content matches among items nobody took yet in place of the last ones; never
        a `hidden` product."""
        user = self.catalog.users.get(user_id)
        allowed = self.allowed(filters or ItemFilters(), hidden)
        has_history = user >= 0 and self.history.indptr[user + 1] > self.history.indptr[user]
        if not has_history and not live:
            cold = self.cold_start(user, segment, n, allowed)
            if cold is not None:
                return user >= 0, cold
        c = self.positions(user, n, live, allowed, exclude_history)
        out = CandidateList(
            self._item_ids[c.items].tolist(),
            c.scores.tolist(),
            c.similarity.tolist(),
            self._reasons[c.seeds].tolist(),
        )
        # The live catalog's new products first: the shop added them since this version was
        # trained; then catalog items nobody took yet, in the places left.
        new = CandidateList()
        if len(self.new_products) and fresh > 0:
            profile = self.profile(user, live)
            new = self.new_products.matches(
                profile, min(fresh, n), filters or ItemFilters(), hidden
            )
        new += self.fresh(user, live, min(fresh, n) - len(new), allowed, c.items)
        if new:
            out = out.head(n - len(new)) + new
        return user >= 0 or bool(live), out
