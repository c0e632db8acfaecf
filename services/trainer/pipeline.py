"""The training pipeline as pure functions: data in, artifacts and metrics out. No Redis, no Celery.

Time layout for a fit "as of" T (W = label_days):
  features < T-2W | labels [T-2W, T-W)  -> ranker training lists
  features < T-W  | labels [T-W, T)     -> ranker validation lists (early stopping)
  features < T                          -> what is served
Without a usable time order, a random quarter of each user's items are the labels instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from services.trainer.engines import ranker_fit
from services.trainer.splits import MSR_TRAIN_RATIO, held_out_strength, per_user_random_split
from shared.datasets.base import Dataset
from shared.ml.candidates import (
    CandidateIndex,
    item_embeddings,
    lowrank_filter,
    neighbour_graph,
)
from shared.ml.content import ContentIndex, content_matrix
from shared.ml.features import build_feature_store, pair_features
from shared.ml.interactions import DAY, IdMap
from shared.ml.labels import item_label_groups
from shared.ml.model import CandidateModel, Catalog, RankingModel
from shared.ml.ranker import MAX_RELEVANCE, RankerModel, RankingData
from shared.schemas import TrainParams

ProgressFn = Callable[[str, float], None]
# How ranker labels are carved out of training data: later time windows, or random held-out items.
LabelScheme = Literal["temporal", "random"]


def no_progress(stage: str, fraction: float) -> None:
    pass


def build_catalog(data: Dataset) -> Catalog:
    users = list(dict.fromkeys([*data.users["user_id"].astype(str), *data.interactions["user_id"]]))
    items = list(
        dict.fromkeys([*data.items["product_id"].astype(str), *data.interactions["product_id"]])
    )
    meta = data.items.drop_duplicates("product_id").set_index("product_id").reindex(items)

    def strings(col: str) -> list[str | None]:
        return [None if not isinstance(v, str) else v for v in meta[col].tolist()]

    prices = [None if not np.isfinite(p) else float(p) for p in meta["price"].astype(float)]
    return Catalog(
        users=IdMap(users),
        items=IdMap(items),
        titles=strings("title"),
        categories=strings("category"),
        prices=prices,
        category_vocab=sorted({c for c in meta["category"].dropna().astype(str)}),
        segment_vocab=sorted({s for s in data.users["segment"].dropna().astype(str)}),
    )


def stage_one(data: Dataset, catalog: Catalog, as_of: float, params: TrainParams) -> CandidateModel:
    store = build_feature_store(
        data, catalog.users, catalog.items, catalog.category_vocab, catalog.segment_vocab, as_of
    )
    vectors = item_embeddings(
        store.user_items, len(catalog.items), params.embedding_dim, params.seed
    )
    popularity = store.item_log_pop_30d + 0.01 * store.item_log_pop_all
    graph, lowrank = None, None
    if params.graph_neighbours > 0 and len(catalog.items) <= params.graph_max_items:
        labels = (
            item_label_groups(catalog.items, data.items, params.graph_title_labels)
            if params.graph_label_weight > 0
            else []
        )
        graph = neighbour_graph(
            store.user_items,
            len(catalog.items),
            params.graph_l2,
            params.graph_neighbours,
            params.graph_session_minutes,
            params.graph_session_weight,
            labels,
            params.graph_label_weight,
        )
        if params.graph_lowrank > 0 and params.graph_lowrank_weight > 0:
            lowrank = lowrank_filter(
                store.user_items,
                graph,
                params.graph_lowrank,
                params.graph_lowrank_weight,
                params.seed,
            )
    # Items nobody took before `as_of` are reachable through their content only.
    content = ContentIndex(
        content_matrix(catalog.titles, catalog.categories, catalog.prices),
        np.flatnonzero(store.item_log_pop_all == 0),
    )
    return CandidateModel(
        catalog, store, CandidateIndex(vectors, popularity, graph, lowrank), content
    )


@dataclass(frozen=True)
class LabelWindow:
    """Ranker lists: candidates and features from `features` as of `as_of`, labels from later."""

    features: Dataset
    as_of: float
    labels: dict[str, dict[str, float]]  # user -> item taken next -> how strongly (rating)


def temporal_windows(
    data: Dataset, as_of: float, label_days: int, n_train: int = 1
) -> tuple[list[LabelWindow], LabelWindow]:
    """Validation lists labelled in [T-W, T); train lists in [T-2W, T-W) and, with n_train > 1,
    in the windows before it. Features always come from before a window's labels."""
    ints, w = data.interactions, label_days * DAY

    def window(cut: float, end: float) -> LabelWindow:
        before = ints[ints["ts"] < cut]
        labels = held_out_strength(before, ints[(ints["ts"] >= cut) & (ints["ts"] < end)])
        return LabelWindow(replace(data, interactions=before), cut, labels)

    train = [window(as_of - (i + 2) * w, as_of - (i + 1) * w) for i in range(n_train)]
    return [t for t in train if t.labels], window(as_of - w, as_of)


def random_windows(
    data: Dataset, seed: int, n_folds: int = 1
) -> tuple[list[LabelWindow], LabelWindow]:
    """For data without a usable time order (random protocols): hold out a random quarter of each
    user's items as labels; a fifth of the users form the validation lists. With n_folds > 1 the
    other users' lists are drawn again from other random quarters (more lists for the ranker);
    those folds never see the validation users' held-out items, not even as features."""
    ints = data.interactions.reset_index(drop=True)  # row labels name rows below
    inner, held_out = per_user_random_split(ints, MSR_TRAIN_RATIO, seed + 1)
    labels = held_out_strength(inner, held_out)
    users = sorted(labels)
    valid_users = set(np.random.default_rng(seed).permutation(users)[: len(users) // 5].tolist())
    as_of = float(ints["ts"].max()) + 1

    def window(features: Dataset, labels: dict[str, dict[str, float]]) -> LabelWindow:
        kept = {u: v for u, v in labels.items() if u not in valid_users}
        return LabelWindow(features, as_of, kept)

    first = replace(data, interactions=inner)  # one object: the first fold and validation share it
    train = [window(first, labels)]
    hidden = held_out[held_out["user_id"].isin(valid_users)].index
    rest = ints.drop(index=hidden)
    for fold in range(1, n_folds):
        fold_inner, fold_out = per_user_random_split(rest, MSR_TRAIN_RATIO, seed + 1 + fold)
        fold_labels = held_out_strength(fold_inner, fold_out)
        train.append(window(replace(data, interactions=fold_inner), fold_labels))
    valid = {u: v for u, v in labels.items() if u in valid_users}
    return train, LabelWindow(first, as_of, valid)


def ranking_rows(
    cm: CandidateModel,
    labels: dict[str, dict[str, float]],
    n_candidates: int,
    graded: bool = False,
) -> RankingData:
    """Candidate lists of `cm`, labelled by the items each user took next: with `graded`, as
    strongly as they took them (a purchase above a view, five stars above three), else 0/1."""
    xs, ys = [], []
    for user_id, taken in labels.items():
        user = cm.catalog.users.get(user_id)
        products = sorted(taken)
        positives = cm.catalog.items.positions(products)
        relevance = np.array([relevance_label(taken[p]) if graded else 1 for p in products])
        c = cm.positions(user, n_candidates)
        y = np.zeros(len(c.items), dtype=np.float32)
        hit = np.isin(c.items, positives)
        if not hit.any():
            continue  # a list without a positive teaches lambdarank nothing
        where = {int(i): r for i, r in zip(positives.tolist(), relevance.tolist(), strict=True)}
        y[hit] = [where[int(i)] for i in c.items[hit]]
        xs.append(pair_features(cm.store, user, c.items, c.scores, c.similarity))
        ys.append(y)
    return RankingData.stack(xs, ys)


def relevance_label(strength: float) -> int:
    """Lambdarank wants small integer relevance: the rating rounded, at least 1, at most 30."""
    return int(min(max(round(strength), 1), MAX_RELEVANCE))


def fit_two_stage(
    data: Dataset,
    catalog: Catalog,
    params: TrainParams,
    scheme: LabelScheme,
    progress: ProgressFn = no_progress,
    span: tuple[float, float] = (0.0, 1.0),
) -> tuple[CandidateModel, RankingModel, float]:
    """Both stages on all of `data`; returns them and the ranker's best validation NDCG@10."""
    lo, hi = span
    as_of = float(data.interactions["ts"].max()) + 1
    if scheme == "temporal":
        train_ws, valid_w = temporal_windows(data, as_of, params.label_days, params.train_windows)
    else:
        train_ws, valid_w = random_windows(data, params.seed, params.label_folds)
    progress("features", lo)
    stage_ones: dict[int, CandidateModel] = {}  # windows sharing their features share stage one

    def stage(w: LabelWindow) -> CandidateModel:
        if id(w.features) not in stage_ones:
            stage_ones[id(w.features)] = stage_one(w.features, catalog, w.as_of, params)
        return stage_ones[id(w.features)]

    def rows(w: LabelWindow, graded: bool) -> RankingData:
        return ranking_rows(stage(w), w.labels, params.n_candidates, graded)

    # Learn from graded labels; early-stop (and gate promotion) on the 0/1 NDCG that is reported.
    valid = rows(valid_w, graded=False)
    if params.engine == "dask" and params.dask_rows:
        from services.trainer.dask_engine import fit_windows_on_cluster  # the optional extra

        progress("ranker", lo + 0.5 * (hi - lo))
        ranker = fit_windows_on_cluster([(stage(w), w.labels) for w in train_ws], valid, params)
    else:
        train = RankingData.concat([rows(w, params.graded_labels) for w in train_ws])
        if not len(train.groups):
            raise ValueError(
                "no user took a candidate item in the ranker's training window: too little data"
            )
        progress("ranker", lo + 0.5 * (hi - lo))
        fit = ranker_fit(params)
        ranker = RankerModel.average(
            [
                fit(train, valid, params.num_boost_round, params.seed + j)
                for j in range(params.ranker_models)
            ]
        )
    valid_ndcg = ranker.valid_ndcg
    progress("candidates", lo + 0.8 * (hi - lo))
    cm = stage_one(data, catalog, as_of, params)
    return cm, RankingModel(catalog, cm.store, ranker), valid_ndcg
