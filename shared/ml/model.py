"""A published model version: its artifacts, and the two stages the services run on them.

The candidate service loads `CandidateModel`, the ranker `RankingModel`; the trainer's evaluation
calls the same two objects in-process, so offline numbers measure the code that serves.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import orjson

from shared.ml.candidates import CandidateIndex, Candidates, generate_candidates
from shared.ml.content import ContentIndex
from shared.ml.features import FEATURE_NAMES, FeatureStore, LiveItems, pair_features
from shared.ml.interactions import IdMap
from shared.ml.ranker import RankerModel
from shared.schemas import Explanation, ItemFilters, LiveHistory, RecommendedItem

CATALOG = "catalog.json"
FEATURES = "features.npz"
INDEX = "index.npz"
CONTENT = "content.npz"
RANKER = "ranker.txt"
CANDIDATE_ARTIFACTS = [CATALOG, FEATURES, INDEX, CONTENT]
COLD_START = "cold_start"
RANKER_ARTIFACTS = [CATALOG, FEATURES, RANKER]


def _clean(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def user_age(store: FeatureStore, user: int) -> float | None:
    """The age of user position `user` (-1: unknown user), None where the data has none."""
    return _clean(float(store.user_age[user])) if user >= 0 else None


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


class Proposal(NamedTuple):
    """One of stage one's candidates (a row of `Proposals`)."""

    product: str
    score: float
    similarity: float  # embedding k-NN score, a ranker feature
    reason: str


@dataclass(slots=True)
class Proposals:
    """Stage one's candidates, best first, as columns: what the candidate service sends
    (`shared.schemas.CandidateList`; orjson writes this dataclass as that JSON object). Plain
    lists, not objects per candidate: building and serializing 200 objects per request cost a
    third of the in-process pipeline, and the ranker reads the columns directly."""

    products: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    similarity: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Proposal]:
        return map(Proposal, self.products, self.scores, self.similarity, self.reasons)

    def __getitem__(self, i: int) -> Proposal:
        return Proposal(self.products[i], self.scores[i], self.similarity[i], self.reasons[i])

    def head(self, n: int) -> Proposals:
        return Proposals(self.products[:n], self.scores[:n], self.similarity[:n], self.reasons[:n])

    def __add__(self, other: Proposals) -> Proposals:
        return Proposals(
            self.products + other.products,
            self.scores + other.scores,
            self.similarity + other.similarity,
            self.reasons + other.reasons,
        )


class CandidateColumns(Protocol):
    """What the ranker reads of stage one: `Proposals` in-process, a `CandidateList` over HTTP."""

    @property
    def products(self) -> Sequence[str]: ...
    @property
    def scores(self) -> Sequence[float]: ...
    @property
    def similarity(self) -> Sequence[float]: ...
    @property
    def reasons(self) -> Sequence[str]: ...


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


class CandidateModel:
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
        # Filter columns as arrays once per load, not per request.
        self._item_category = np.array(catalog.categories, dtype=object)
        self._item_price = np.array(
            [np.nan if p is None else p for p in catalog.prices], dtype=np.float64
        )
        # Ids and reasons as object arrays: a request picks its own with one fancy index. The
        # last reason, "popular", is what seed -1 (a popularity top-up) indexes.
        self._item_ids = np.array(catalog.items.ids, dtype=object)
        self._reasons = np.array(
            [*(f"similar_to:{i}" for i in catalog.items.ids), "popular"], dtype=object
        )

    @classmethod
    def from_artifacts(cls, a: dict[str, bytes]) -> CandidateModel:
        return cls(
            Catalog.from_bytes(a[CATALOG]),
            FeatureStore.from_bytes(a[FEATURES]),
            CandidateIndex.from_bytes(a[INDEX]),
            ContentIndex.from_bytes(a[CONTENT]),
        )

    def user_age(self, user_id: str) -> float | None:
        return user_age(self.store, self.catalog.users.get(user_id))

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
        live: Sequence[LiveEvent] = (),
        allowed: np.ndarray | None = None,
        exclude_history: bool = True,
    ) -> Candidates:
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
    ) -> Proposals:
        """Up to n catalog items nobody took yet whose content reads like what the user took."""
        if n <= 0 or not len(self.content.fresh):
            return Proposals()
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
            return Proposals()
        mask = np.ones(len(self.catalog.items), dtype=bool) if allowed is None else allowed.copy()
        mask[taken] = False
        found, sims = self.content.matches(seeds, np.concatenate(weights), n, mask)
        picked, scores = self._item_ids[found].tolist(), sims.tolist()
        return Proposals(picked, scores, list(scores), [COLD_START] * len(picked))

    def cold_start(
        self, user: int, segment: str | None, n: int, allowed: np.ndarray | None
    ) -> Proposals | None:
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
        return Proposals(picked, scores, [0.0] * len(picked), reasons)

    def candidates(
        self,
        user_id: str,
        n: int,
        live: Sequence[LiveEvent] = (),
        filters: ItemFilters | None = None,
        segment: str | None = None,
        exclude_history: bool = True,
        fresh: int = 0,
    ) -> tuple[bool, Proposals]:
        """(known user, candidates): neighbours of what the user took, best first, with up to
        `fresh` content matches among items nobody took yet in place of the last ones."""
        user = self.catalog.users.get(user_id)
        allowed = self.allowed(filters) if filters else None
        has_history = user >= 0 and self.history.indptr[user + 1] > self.history.indptr[user]
        if not has_history and not live:
            cold = self.cold_start(user, segment, n, allowed)
            if cold is not None:
                return user >= 0, cold
        c = self.positions(user, n, live, allowed, exclude_history)
        out = Proposals(
            self._item_ids[c.items].tolist(),
            c.scores.tolist(),
            c.similarity.tolist(),
            self._reasons[c.seeds].tolist(),
        )
        new = self.fresh(user, live, min(fresh, n), allowed, c.items)
        if new:
            out = out.head(n - len(new)) + new
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

    def _live_items(self, live: LiveHistory | None) -> LiveItems | None:
        if live is None:
            return None
        return LiveItems(
            self.catalog.items.positions(live.products),
            np.asarray(live.counts, dtype=np.float64),
            np.asarray(live.last_ts, dtype=np.float64),
        )

    def score_positions(
        self, user: int, items: np.ndarray, cand_scores: np.ndarray, cand_similarity: np.ndarray
    ) -> np.ndarray:
        return self.ranker.score(
            pair_features(self.store, user, items, cand_scores, cand_similarity)
        )

    def rank(
        self,
        user_id: str,
        candidates: CandidateColumns,
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
        rows = np.flatnonzero(positions >= 0)  # products this version never saw are dropped
        if not len(rows):
            return []
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
        return [
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
