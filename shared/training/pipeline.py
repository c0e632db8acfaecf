"""The training pipeline as pure functions: data in, artifacts and metrics out. No Redis, no Celery.

Time layout for a fit "as of" T (W = label_days):
  features < T-2W | labels [T-2W, T-W)  -> ranker training lists
  features < T-W  | labels [T-W, T)     -> ranker validation lists (early stopping)
  features < T                          -> what is served
Without a usable time order, a random quarter of each user's items are the labels instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from shared.datasets.base import Dataset
from shared.datasets.report import DatasetError
from shared.ml.baselines import ItemKNN
from shared.ml.catalog import Catalog
from shared.ml.interactions import IdMap, UserItemStats
from shared.ml.memory import ModelTooLarge
from shared.ml.stage_one.content import ContentIndex
from shared.ml.stage_one.fit import (
    als_fold_in,
    content_matrix,
    head_items,
    item_embeddings,
    lowrank_filter,
    neighbour_graph,
    with_tail,
)
from shared.ml.stage_one.index import CandidateIndex
from shared.ml.stage_one.labels import item_label_groups
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_one.vector_index import AnnParams, VectorIndex, build_vector_index
from shared.ml.stage_two.features import FeatureStore, build_feature_store
from shared.ml.stage_two.model import RankerEnsemble, RankingData
from shared.ml.stage_two.serving import RankingStage
from shared.training.engines import ranker_fit
from shared.training.lists import LabelWindow, random_windows, ranking_rows, temporal_windows
from shared.training.params import TrainParams

log = logging.getLogger(__name__)
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
    if len(items) < 2:  # stage one's factorisations need two columns; a list, two choices
        raise DatasetError(
            f"the data names {len(items)} product: a recommender needs at least two to choose "
            "between"
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


# Training searches the embeddings once per list it builds (thousands of users, each seed):
# exact search costs ~1 ms per query at 100k items and ~35 ms at a million, so from the size
# the candidate service switches at by default, training builds one HNSW graph too (a minute
# or more at 100k+ items; one thread: the same graph, hence the same model, for the same data
# and seed).
TRAINING_ANN = AnnParams(backend="hnsw")


@dataclass(frozen=True)
class StageOneBase:
    """What stage one's fit shares across recipes on the same data: features, embeddings,
    popularity and content vectors (the tuner fits many graphs on one base)."""

    data: Dataset
    catalog: Catalog
    store: FeatureStore
    vectors: np.ndarray
    popularity: np.ndarray
    content: ContentIndex
    search: VectorIndex  # k-NN over `vectors`, built once for every recipe


def stage_one_base(
    data: Dataset, catalog: Catalog, as_of: float, params: TrainParams
) -> StageOneBase:
    store = build_feature_store(
        data, catalog.users, catalog.items, catalog.category_vocab, catalog.segment_vocab, as_of
    )
    vectors = item_embeddings(
        store.user_items, len(catalog.items), params.embedding_dim, params.seed
    )
    popularity = store.item_log_pop_30d + 0.01 * store.item_log_pop_all
    # Items nobody took before `as_of` are reachable through their content only.
    content = ContentIndex(
        content_matrix(catalog.titles, catalog.categories, catalog.prices),
        np.flatnonzero(store.item_log_pop_all == 0),
    )
    search = build_vector_index(vectors, TRAINING_ANN)
    return StageOneBase(data, catalog, store, vectors, popularity, content, search)


def item_graph(base: StageOneBase, params: TrainParams) -> sp.csr_matrix:
    """The learned item -> item weights `params` ask for: EASE where it can run on this catalog
    and machine (over the `graph_max_items` most-taken items of a bigger catalog, item-kNN rows
    for the rest), item-kNN cosine otherwise (or when asked)."""
    n_items, stats = len(base.catalog.items), base.store.user_items
    if params.graph_kind == "ease" and params.graph_max_items > 1:
        labels = (
            item_label_groups(base.catalog.items, base.data.items, params.graph_title_labels)
            if params.graph_label_weight > 0
            else []
        )
        head = head_items(stats, n_items, params.graph_max_items)
        try:
            graph = neighbour_graph(
                stats,
                n_items,
                params.graph_l2,
                params.graph_neighbours,
                params.graph_session_minutes,
                params.graph_session_weight,
                labels,
                params.graph_label_weight,
                head,
                params.graph_dropout,
            )
            if head is None:
                return graph
            return with_tail(graph, stats, head, min(params.graph_neighbours, 100))
        except ModelTooLarge as exc:
            log.warning("stage one: %s; item-kNN weights instead", exc)
    return knn_graph(stats, n_items, params.graph_neighbours)


def knn_graph(stats: UserItemStats, n_items: int, neighbours: int) -> sp.csr_matrix:
    """Item-kNN cosine weights, each item's top `neighbours`."""
    knn = ItemKNN(neighbours=neighbours)
    knn.fit(stats.matrix(n_items))
    return knn.similarity


def stage_one_from(base: StageOneBase, params: TrainParams) -> CandidateStage:
    graph, lowrank, fold_in = None, None, None
    if params.graph_kind == "als":
        stats, n_items = base.store.user_items, len(base.catalog.items)
        # the graph explains ALS's answers (their `similar_to:` reasons): item-kNN, any size
        graph = knn_graph(stats, n_items, max(params.graph_neighbours, 1))
        fold_in = als_fold_in(
            stats,
            n_items,
            params.als_factors,
            params.als_regularization,
            params.als_alpha,
            params.als_iterations,
            params.seed,
        )
    elif params.graph_neighbours > 0:
        graph = item_graph(base, params)
        if params.graph_lowrank > 0 and params.graph_lowrank_weight > 0:
            lowrank = lowrank_filter(
                base.store.user_items,
                graph,
                params.graph_lowrank,
                params.graph_lowrank_weight,
                params.seed,
            )
    index = CandidateIndex(base.vectors, base.popularity, graph, lowrank, fold_in, base.search)
    return CandidateStage(base.catalog, base.store, index, base.content)


def stage_one(data: Dataset, catalog: Catalog, as_of: float, params: TrainParams) -> CandidateStage:
    return stage_one_from(stage_one_base(data, catalog, as_of, params), params)


def ranker_lists(
    data: Dataset,
    catalog: Catalog,
    params: TrainParams,
    scheme: LabelScheme,
    progress: ProgressFn = no_progress,
    at: float = 0.0,
    max_users: int | None = None,
    max_lists: int | None = None,
) -> tuple[RankingData | list[tuple[CandidateStage, dict[str, dict[str, float]]]], RankingData]:
    """The ranker's training and validation lists on `data` (labels carved from later windows or
    held-out items); with the Dask engine's `dask_rows`, the windows themselves for the cluster.
    With `max_users`, each window's lists are those of a seeded sample of that many users; with
    `max_lists`, the training windows' lists are at most that many, an equal share each (and
    validation's at most one share)."""
    as_of = float(data.interactions["ts"].max()) + 1
    if scheme == "temporal":
        train_ws, valid_w = temporal_windows(data, as_of, params.label_days, params.train_windows)
    else:
        train_ws, valid_w = random_windows(data, params.seed, params.label_folds)
    if max_lists is not None and train_ws:
        max_users = max(1, max_lists // len(train_ws))
    if max_users is not None:
        train_ws = [w.sample(max_users, params.seed) for w in train_ws]
        valid_w = valid_w.sample(max_users, params.seed)
    progress("features", at)
    stage_ones: dict[int, CandidateStage] = {}  # windows sharing their features share stage one

    def stage(w: LabelWindow) -> CandidateStage:
        if id(w.features) not in stage_ones:
            stage_ones[id(w.features)] = stage_one(w.features, catalog, w.as_of, params)
        return stage_ones[id(w.features)]

    def rows(w: LabelWindow, graded: bool) -> RankingData:
        return ranking_rows(stage(w), w.labels, params.n_candidates, graded)

    # Learn from graded labels; early-stop (and gate promotion) on the 0/1 NDCG that is reported.
    valid = rows(valid_w, graded=False)
    if not params.use_ranker:
        # No ranker to train: only the validation lists (stage one's gate score) are needed, and
        # each training window would cost one more stage-one fit (a full EASE fit on big logs).
        return RankingData.stack([], []), valid
    if params.lists_on_cluster:
        return [(stage(w), w.labels) for w in train_ws], valid
    return RankingData.concat([rows(w, params.graded_labels) for w in train_ws]), valid


def fit_ranker_on(train: RankingData, valid: RankingData, params: TrainParams) -> RankerEnsemble:
    """The ranker of `params` on prepared lists; with `use_ranker` off, none: stage one's order."""
    if not params.use_ranker:
        return RankerEnsemble(prior_weight=1.0)
    if not len(train.groups):
        raise DatasetError(
            "no user took a candidate item in the ranker's training window: too little data"
        )
    fit = ranker_fit(params)
    return RankerEnsemble.average(
        [
            fit(train, valid, params.num_boost_round, params.seed + j)
            for j in range(params.ranker_models)
        ]
    )


def lists_ndcg(lists: RankingData, scores: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over the lists (groups) of `lists` ordered by `scores` (linear gains, as the
    ranker's own metric); lists without a relevant item count as LightGBM counts them, 1."""
    out, start = [], 0
    for size in lists.groups.tolist():
        y, s = lists.y[start : start + size], scores[start : start + size]
        start += size
        ideal = np.sort(y)[::-1][:k]
        discount = 1.0 / np.log2(np.arange(2, k + 2))
        best = float(ideal @ discount[: len(ideal)])
        if best <= 0:
            out.append(1.0)
            continue
        top = y[np.argsort(-s, kind="stable")][:k]
        out.append(float(top @ discount[: len(top)]) / best)
    return float(np.mean(out)) if out else float("nan")


def fit_two_stage(
    data: Dataset,
    catalog: Catalog,
    params: TrainParams,
    scheme: LabelScheme,
    progress: ProgressFn = no_progress,
    span: tuple[float, float] = (0.0, 1.0),
) -> tuple[CandidateStage, RankingStage, float]:
    """Both stages on all of `data`; returns them and the ranker's validation NDCG@10 (with the
    ranker stepped aside, stage one's own on the same lists)."""
    lo, hi = span
    as_of = float(data.interactions["ts"].max()) + 1
    # lists too big for one machine (built on the cluster) are not bounded
    cap = None if params.lists_on_cluster else params.ranker_max_lists or None  # 0: every list
    lists, valid = ranker_lists(data, catalog, params, scheme, progress, lo, max_lists=cap)
    progress("ranker", lo + 0.5 * (hi - lo))
    if isinstance(lists, list):
        from shared.training.dask_engine import fit_windows_on_cluster  # the optional extra

        ranker = fit_windows_on_cluster(lists, valid, params)
    else:
        ranker = fit_ranker_on(lists, valid, params)
    valid_ndcg = ranker.valid_ndcg
    if not ranker.boosters:
        valid_ndcg = lists_ndcg(valid, ranker.score(valid.x))
    progress("candidates", lo + 0.8 * (hi - lo))
    cm = stage_one(data, catalog, as_of, params)
    return cm, RankingStage(catalog, cm.store, ranker), valid_ndcg
