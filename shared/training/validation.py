"""Validation splits carved from training data, and the scores the recipe search compares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shared.datasets.base import Dataset
from shared.ml.baselines import Recommender
from shared.ml.catalog import Catalog
from shared.ml.metrics import ndcg_at_k
from shared.ml.stage_one.graph_product import dense_form, times_graph
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_two.features import FEATURE_NAMES, pair_features
from shared.ml.stage_two.model import RankerEnsemble
from shared.ml.top_lists import users_per_block
from shared.training.params import TrainParams
from shared.training.pipeline import (
    LabelScheme,
    StageOneBase,
    stage_one_base,
)
from shared.training.splits import Split, msr_split, temporal_split

K = 10


# Fewer held-out users than this make a validation score too noisy to choose by.
MIN_VALID_USERS = 30
# More than this are a seeded sample: every trial scores each of them (a candidate search and
# features per user), and past a few thousand the choice barely moves while the time grows.
MAX_VALID_USERS = 4000


@dataclass(frozen=True)
class Validation:
    split: Split
    users: list[int]
    relevant: dict[int, set[int]]
    base: StageOneBase


def validation_splits(
    data: Dataset, catalog: Catalog, params: TrainParams, scheme: LabelScheme, n: int = 2
) -> list[Split]:
    """Up to `n` validation splits from `data` (the training part): the last `test_days` and the
    window before them, or random per-user splits with seeds the test split never uses."""
    out = []
    rest = data
    for i in range(n):
        if scheme == "temporal":
            split = temporal_split(rest, params.test_days)
            rest = split.train
        else:
            split = msr_split(data, seed=params.seed + 1000 + i)
        if len(split.truth) < MIN_VALID_USERS or split.train.interactions.empty:
            break
        out.append(split)
    return out


def make_validation(split: Split, catalog: Catalog, params: TrainParams) -> Validation:
    as_of = float(split.train.interactions["ts"].max()) + 1
    users = sorted(catalog.users.get(u) for u in split.truth)
    if len(users) > MAX_VALID_USERS:
        rng = np.random.default_rng(params.seed)
        users = sorted(rng.choice(users, MAX_VALID_USERS, replace=False).tolist())
    chosen = set(users)
    relevant = {
        catalog.users.get(u): set(catalog.items.positions(sorted(v)).tolist())
        for u, v in split.truth.items()
        if catalog.users.get(u) in chosen
    }
    return Validation(split, users, relevant, stage_one_base(split.train, catalog, as_of, params))


def _ndcg(lists: list[list[int]], v: Validation) -> float:
    return float(
        np.mean(
            [ndcg_at_k(items, v.relevant[u], K) for u, items in zip(v.users, lists, strict=True)]
        )
    )


def stage_one_ndcg(cm: CandidateStage, v: Validation) -> float:
    """Stage one's NDCG@10 on the validation users, its list's top as served: by the graph's (and
    low-rank filter's) or ALS's score over each user's history, what they have excluded. One sparse
    product for all users instead of one search each; where a user has fewer than ten items
    a graph reaches, the served list fills up from embedding neighbours instead (ALS reaches
    every item)."""
    index, n_items = cm.index, len(cm.catalog.items)
    if index.graph is None:
        return _ndcg([cm.positions(u, K).items.tolist() for u in v.users], v)
    users = np.array(v.users, dtype=np.int64)
    strengths = cm.history.matrix(n_items)[users].tocsr()  # what ALS weighs
    rows = strengths.copy()
    rows.data[:] = 1.0  # what the graph counts
    lists: list[list[int]] = []
    step = users_per_block(n_items)
    dense = dense_form(index.graph) if index.fold_in is None else None
    for start in range(0, rows.shape[0], step):
        chunk = rows[start : start + step]
        if index.fold_in is not None:
            block = slice(start, start + step)
            scores = index.fold_in.batch_scores(users[block], strengths[block])
        else:
            scores = times_graph(chunk, index.graph, dense)
        if index.lowrank is not None:
            scores += (chunk @ index.lowrank.left) @ index.lowrank.right
        seen = chunk.nonzero()
        scores[seen] = -np.inf
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        lists += np.take_along_axis(top, order, axis=1).tolist()
    return _ndcg(lists, v)


@dataclass(frozen=True)
class CandidateLists:
    """Stage one's candidate lists for the validation users with their ranker features, built
    once: each ranker trial only scores them (all lists in one call: `score_lists`)."""

    items: list[np.ndarray]
    features: np.ndarray  # every list's rows, stacked in `items`' order
    sizes: np.ndarray

    @classmethod
    def build(cls, cm: CandidateStage, v: Validation, depth: int) -> CandidateLists:
        items, features = [], []
        for u in v.users:
            c = cm.positions(u, max(K, depth))
            items.append(c.items)
            features.append(pair_features(cm.store, u, c.items, c.scores, c.similarity))
        sizes = np.array([len(i) for i in items], dtype=np.int64)
        stacked = np.vstack(features) if features else np.empty((0, len(FEATURE_NAMES)))
        return cls(items, stacked, sizes)

    def ndcg(self, v: Validation, ranker: RankerEnsemble | None = None) -> float:
        """NDCG@10 of the lists in stage one's order, or re-ordered by `ranker`."""
        return float(np.mean(self.per_user(v, ranker)))

    def per_user(self, v: Validation, ranker: RankerEnsemble | None = None) -> np.ndarray:
        """Each validation user's NDCG@10 (in `v.users`' order), as `ndcg` averages them."""
        scores: Sequence[np.ndarray | None] = [None] * len(self.items)
        if ranker is not None:
            scores = ranker.score_lists(self.features, self.sizes)
        out = np.empty(len(v.users))
        for i, (u, items, s) in enumerate(zip(v.users, self.items, scores, strict=True)):
            if s is not None:
                items = items[np.argsort(-s, kind="stable")]
            out[i] = ndcg_at_k(items[:K].tolist(), v.relevant[u], K)
        return out


def baseline_ndcg(model: Recommender, v: Validation, x: sp.csr_matrix) -> float:
    """`model` fitted on the split's training matrix `x` (`train_matrix`), scored as the
    pipeline is."""
    model.fit(x)
    ranked = model.recommend(np.array(v.users, dtype=np.int64), K, x)
    return float(
        np.mean(
            [
                ndcg_at_k([i for i in row if i >= 0], v.relevant[u], K)
                for u, row in zip(v.users, ranked.tolist(), strict=True)
            ]
        )
    )
