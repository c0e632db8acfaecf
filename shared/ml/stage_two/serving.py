"""The ranking stage as the ranker service runs it: a version's features and ranker ensemble,
ordering stage one's `CandidateListPayload` (or its payload) for a user.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shared.ml.catalog import Catalog
from shared.ml.stage_one.candidate_list import COLD_START, CandidateList
from shared.ml.stage_one.search import SearchResult
from shared.ml.stage_two.features import (
    FEATURE_NAMES,
    FeatureStore,
    LiveItems,
    pair_features,
    user_age,
)
from shared.ml.stage_two.model import RankerEnsemble
from shared.ml.version_artifacts import CATALOG, FEATURES, RANKER
from shared.schemas.serving import CandidateListPayload, Explanation, LiveHistory, RecommendedItem


class RankingStage:
    def __init__(self, catalog: Catalog, store: FeatureStore, ranker: RankerEnsemble) -> None:
        self.catalog, self.store, self.ranker = catalog, store, ranker

    @classmethod
    def from_artifacts(cls, a: dict[str, bytes]) -> RankingStage:
        return cls(
            Catalog.from_bytes(a[CATALOG]),
            FeatureStore.from_bytes(a[FEATURES]),
            RankerEnsemble.from_text(a[RANKER].decode()),
        )

    def _live_items(self, live: LiveHistory | None) -> LiveItems | None:
        if live is None:
            return None
        return LiveItems(
            self.catalog.items.positions(live.products),
            np.asarray(live.counts, dtype=np.float64),
            np.asarray(live.last_ts, dtype=np.float64),
        )

    def score_many(self, users: Sequence[int], found: Sequence[SearchResult]) -> list[np.ndarray]:
        """The ranker's score of each user's stage-one candidates (`found`, their positions),
        called once for them all (`RankerEnsemble.score_lists`): for offline scoring of many
        users (evaluation); a request is ranked by `rank`."""
        x = [
            pair_features(self.store, u, c.items, c.scores, c.similarity)
            for u, c in zip(users, found, strict=True)
        ]
        if not x:
            return []
        sizes = np.array([len(c.items) for c in found])
        return self.ranker.score_lists(np.vstack(x), sizes)

    def rank(
        self,
        user_id: str,
        candidates: CandidateList | CandidateListPayload,
        k: int,
        explain: bool = False,
        fresh_slots: int = 0,
        live: LiveHistory | None = None,
    ) -> list[RecommendedItem]:
        """The k best candidates by the ranker's score. Up to `fresh_slots` of them are kept
        for cold-start candidates: the ranker learned from items with a history and scores a
        product nobody took yet low, so without a reserved place it would never be seen.
        `live`: what the user took since training, counted as history in their features."""
        user = self.catalog.users.get(user_id)
        positions = self.catalog.items.positions(candidates.products)
        # Products this version never saw: new ones of the live catalog (cold start) keep
        # reserved places below; others (a stale list) are dropped.
        new = [
            r for r in np.flatnonzero(positions < 0).tolist() if candidates.reasons[r] == COLD_START
        ][:fresh_slots]
        rows = np.flatnonzero(positions >= 0)
        if not len(rows):
            age = user_age(self.store, user)
            return [self._unknown(candidates, r, 0.0, age) for r in new][:k]
        items = positions[rows]
        x = pair_features(
            self.store,
            user,
            items,
            np.asarray(candidates.scores, np.float32)[rows],
            np.asarray(candidates.similarity, np.float32)[rows],
            self._live_items(live),
        )
        scores = self.ranker.score(x)
        reasons = candidates.reasons
        order = reserve_slots(
            np.argsort(-scores, kind="stable"),
            np.array([reasons[r] == COLD_START for r in rows.tolist()], dtype=bool),
            k,
            fresh_slots,
        )
        explanations: dict[int, Explanation] = {}
        if explain:
            contrib = self.ranker.contributions(x[order])
            for at, j in enumerate(order.tolist()):
                reason = reasons[rows[j]]
                explanations[j] = Explanation(
                    seed=reason.split(":", 1)[1] if reason.startswith("similar_to:") else None,
                    contributions=dict(zip(FEATURE_NAMES, contrib[at, :-1].tolist(), strict=True)),
                    bias=float(contrib[at, -1]),
                )
        age = user_age(self.store, user)
        cat, products = self.catalog, candidates.products
        ranked = [
            RecommendedItem(
                product=products[r],
                score=float(scores[j]),
                price=cat.prices[i],
                age=age,
                title=cat.titles[i],
                category=cat.categories[i],
                reason=reasons[r],
                explanation=explanations.get(j),
            )
            for j, r, i in zip(
                order.tolist(), rows[order].tolist(), items[order].tolist(), strict=True
            )
        ]
        if not new:
            return ranked
        # new products take the places of the lowest-scored items that are not cold start
        excess = len(ranked) + len(new) - k
        if excess > 0:
            others = [i for i, item in enumerate(ranked) if item.reason != COLD_START]
            drop = set(others[max(0, len(others) - excess) :])
            ranked = [item for i, item in enumerate(ranked) if i not in drop]
        floor = min((item.score for item in ranked), default=0.0)
        return (ranked + [self._unknown(candidates, r, floor - 1e-3, age) for r in new])[:k]

    @staticmethod
    def _unknown(
        candidates: CandidateList | CandidateListPayload, r: int, score: float, age: float | None
    ) -> RecommendedItem:
        """A new product (unknown to this version) as an answer item: the gateway adds its
        live title, price and category."""
        return RecommendedItem(
            product=candidates.products[r],
            score=score,
            price=None,
            age=age,
            reason=COLD_START,
        )


def demote(items: list[RecommendedItem], products: set[str]) -> list[RecommendedItem]:
    """`items` with those of `products` (shown too often without an interaction) last, in
    their order, their reason saying so."""
    keep = [i for i in items if i.product not in products]
    last = [
        i.model_copy(update={"reason": f"{i.reason};demoted"})
        for i in items
        if i.product in products
    ]
    return keep + last


def reserve_slots(order: np.ndarray, fresh: np.ndarray, k: int, slots: int) -> np.ndarray:
    """The first k of `order`, with the best `slots` fresh entries guaranteed a place (they take
    the places of the lowest-scored others); the result stays in `order`'s order."""
    top = order[:k]
    wanted = min(slots, k, int(fresh.sum())) - int(fresh[top].sum())
    if wanted <= 0:
        return top
    extra = order[k:][fresh[order[k:]]][:wanted]
    others = top[~fresh[top]]
    keep = np.concatenate([top[fresh[top]], others[: len(others) - wanted], extra])
    rank_of = np.empty(len(order), dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    return keep[np.argsort(rank_of[keep], kind="stable")]
