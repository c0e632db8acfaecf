"""A published model version: its artifacts, and the two stages the services run on them.

The candidate service loads `CandidateModel`, the ranker `RankingModel`; the trainer's evaluation
calls the same two objects in-process, so offline numbers measure the code that serves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from shared.ml.candidates import CandidateIndex, Candidates, generate_candidates
from shared.ml.features import FEATURE_NAMES, FeatureStore, pair_features
from shared.ml.interactions import IdMap
from shared.ml.ranker import RankerModel
from shared.schemas import Candidate, Explanation, ItemFilters, RecommendedItem

CATALOG = "catalog.json"
FEATURES = "features.npz"
INDEX = "index.npz"
RANKER = "ranker.txt"
CANDIDATE_ARTIFACTS = [CATALOG, FEATURES, INDEX]
RANKER_ARTIFACTS = [CATALOG, FEATURES, RANKER]


def _clean(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass(frozen=True)
class Catalog:
    users: IdMap
    items: IdMap
    titles: list[str | None]
    categories: list[str | None]
    prices: list[float | None]
    category_vocab: list[str]
    segment_vocab: list[str]

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "user_ids": self.users.ids,
                "item_ids": self.items.ids,
                "titles": self.titles,
                "categories": self.categories,
                "prices": self.prices,
                "category_vocab": self.category_vocab,
                "segment_vocab": self.segment_vocab,
                "feature_names": FEATURE_NAMES,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Catalog:
        raw = orjson.loads(data)
        if raw["feature_names"] != FEATURE_NAMES:
            raise ValueError("model was built with a different feature set than this code serves")
        return cls(
            IdMap(raw["user_ids"]),
            IdMap(raw["item_ids"]),
            raw["titles"],
            raw["categories"],
            raw["prices"],
            raw["category_vocab"],
            raw["segment_vocab"],
        )


def segment_popularity(store: FeatureStore, n_segments: int) -> np.ndarray:
    """(segments x items) how many users of each segment took each item, from the features."""
    out = np.zeros((max(n_segments, 1), len(store.item_log_pop_all)), dtype=np.float32)
    users = np.repeat(np.arange(len(store.ui_indptr) - 1), np.diff(store.ui_indptr))
    seg = store.user_segment[users].astype(np.int64)
    ok = seg >= 0
    np.add.at(out, (seg[ok], store.ui_indices[ok]), 1.0)
    return out


class CandidateModel:
    def __init__(self, catalog: Catalog, store: FeatureStore, index: CandidateIndex) -> None:
        self.catalog, self.store, self.index = catalog, store, index
        self.history = store.user_items
        self.segment_popularity = segment_popularity(store, len(catalog.segment_vocab))
        self._segments = {name: i for i, name in enumerate(catalog.segment_vocab)}
        # Filter columns as arrays once per load, not per request.
        self._item_category = np.array(catalog.categories, dtype=object)
        self._item_price = np.array(
            [np.nan if p is None else p for p in catalog.prices], dtype=np.float64
        )

    @classmethod
    def from_artifacts(cls, a: dict[str, bytes]) -> CandidateModel:
        return cls(
            Catalog.from_bytes(a[CATALOG]),
            FeatureStore.from_bytes(a[FEATURES]),
            CandidateIndex.from_bytes(a[INDEX]),
        )

    def allowed(self, filters: ItemFilters) -> np.ndarray | None:
        """Boolean mask of items passing `filters`; None when nothing is filtered."""
        f, cat = filters, self.catalog
        if f.category is None and f.min_price is None and f.max_price is None and not f.exclude:
            return None
        mask = np.ones(len(cat.items), dtype=bool)
        if f.category is not None:
            mask &= self._item_category == f.category
        if f.min_price is not None or f.max_price is not None:
            lo = -np.inf if f.min_price is None else f.min_price
            hi = np.inf if f.max_price is None else f.max_price
            with np.errstate(invalid="ignore"):
                mask &= (self._item_price >= lo) & (
                    self._item_price <= hi
                )  # unknown prices never satisfy a bound
        excluded = cat.items.positions(f.exclude)
        mask[excluded[excluded >= 0]] = False
        return mask

    def positions(
        self,
        user: int,
        n: int,
        live: Sequence[tuple[str, float]] = (),
        allowed: np.ndarray | None = None,
    ) -> Candidates:
        """Candidates for a user position; `live` = (product id, weight) of recent events."""
        known = [(self.catalog.items.get(p), w) for p, w in live]
        known = [(i, w) for i, w in known if i >= 0]  # products this version never saw
        return generate_candidates(
            self.index,
            self.history,
            user,
            self.store.as_of,
            n,
            live_items=np.array([i for i, _ in known], dtype=np.int64),
            live_weights=np.array([w for _, w in known], dtype=np.float64),
            allowed=allowed,
        )

    def cold_start(
        self, user: int, segment: str | None, n: int, allowed: np.ndarray | None
    ) -> list[Candidate] | None:
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
        ids, name = self.catalog.items.ids, self.catalog.segment_vocab[seg]
        return [
            Candidate(product=ids[i], score=float(counts[i]), reason=f"popular_in:{name}")
            for i in items.tolist()
        ] + [Candidate(product=ids[i], score=0.0, reason="popular") for i in fill.tolist()]

    def candidates(
        self,
        user_id: str,
        n: int,
        live: Sequence[tuple[str, float]] = (),
        filters: ItemFilters | None = None,
        segment: str | None = None,
    ) -> tuple[bool, list[Candidate]]:
        user = self.catalog.users.get(user_id)
        allowed = self.allowed(filters) if filters else None
        has_history = user >= 0 and self.history.indptr[user + 1] > self.history.indptr[user]
        if not has_history and not live:
            cold = self.cold_start(user, segment, n, allowed)
            if cold is not None:
                return user >= 0, cold
        c = self.positions(user, n, live, allowed)
        ids = self.catalog.items.ids
        out = [
            Candidate(
                product=ids[i],
                score=float(s),
                similarity=float(sim),
                reason=f"similar_to:{ids[seed]}" if seed >= 0 else "popular",
            )
            for i, s, sim, seed in zip(
                c.items.tolist(),
                c.scores.tolist(),
                c.similarity.tolist(),
                c.seeds.tolist(),
                strict=True,
            )
        ]
        return user >= 0 or bool(live), out


class RankingModel:
    def __init__(self, catalog: Catalog, store: FeatureStore, ranker: RankerModel) -> None:
        self.catalog, self.store, self.ranker = catalog, store, ranker

    @classmethod
    def from_artifacts(cls, a: dict[str, bytes]) -> RankingModel:
        return cls(
            Catalog.from_bytes(a[CATALOG]),
            FeatureStore.from_bytes(a[FEATURES]),
            RankerModel.from_text(a[RANKER].decode()),
        )

    def score_positions(
        self, user: int, items: np.ndarray, cand_scores: np.ndarray, cand_similarity: np.ndarray
    ) -> np.ndarray:
        return self.ranker.score(
            pair_features(self.store, user, items, cand_scores, cand_similarity)
        )

    def rank(
        self, user_id: str, candidates: list[Candidate], k: int, explain: bool = False
    ) -> list[RecommendedItem]:
        user = self.catalog.users.get(user_id)
        known = [(self.catalog.items.get(c.product), c) for c in candidates]
        known = [(i, c) for i, c in known if i >= 0]  # products this version never saw are dropped
        if not known:
            return []
        items = np.array([i for i, _ in known], dtype=np.int64)
        x = pair_features(
            self.store,
            user,
            items,
            np.array([c.score for _, c in known], np.float32),
            np.array([c.similarity for _, c in known], np.float32),
        )
        scores = self.ranker.score(x)
        order = np.argsort(-scores, kind="stable")[:k]
        explanations: dict[int, Explanation] = {}
        if explain:
            contrib = self.ranker.contributions(x[order])
            for row, j in enumerate(order.tolist()):
                reason = known[j][1].reason
                explanations[j] = Explanation(
                    seed=reason.split(":", 1)[1] if reason.startswith("similar_to:") else None,
                    contributions=dict(zip(FEATURE_NAMES, contrib[row, :-1].tolist(), strict=True)),
                    bias=float(contrib[row, -1]),
                )
        age = _clean(float(self.store.user_age[user])) if user >= 0 else None
        cat = self.catalog
        return [
            RecommendedItem(
                product=known[j][1].product,
                score=float(scores[j]),
                price=cat.prices[items[j]],
                age=age,
                title=cat.titles[items[j]],
                category=cat.categories[items[j]],
                reason=known[j][1].reason,
                explanation=explanations.get(j),
            )
            for j in order.tolist()
        ]
