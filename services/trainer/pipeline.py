"""The training pipeline as pure functions: data in, artifacts and metrics out. No Redis, no Celery.

Time layout for a fit "as of" T (W = label_days):
  features < T-2W | labels [T-2W, T-W)  -> ranker training lists
  features < T-W  | labels [T-W, T)     -> ranker validation lists (early stopping)
  features < T                          -> what is served
Evaluation fits as of the test cut and scores the last `test_days`, which no fit has seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.trainer.evaluation import evaluate_two_stage
from shared.datasets.base import Dataset
from shared.ml.candidates import CandidateIndex, item_embeddings
from shared.ml.features import build_feature_store, pair_features
from shared.ml.interactions import DAY, IdMap
from shared.ml.model import CATALOG, FEATURES, INDEX, RANKER, CandidateModel, Catalog, RankingModel
from shared.ml.ranker import RankingData, fit_ranker
from shared.schemas import TrainParams

ProgressFn = Callable[[str, float], None]


def _no_progress(stage: str, fraction: float) -> None:
    pass


@dataclass(frozen=True)
class TrainOutput:
    artifacts: dict[str, bytes]
    metrics: dict[str, float]


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
    return CandidateModel(catalog, store, CandidateIndex(vectors, popularity))


def new_positives(
    data: Dataset, catalog: Catalog, start: float, end: float, seen: CandidateModel
) -> dict[int, np.ndarray]:
    """Per user: items taken in [start, end) that the user did not have before `start`."""
    window = data.interactions[(data.interactions["ts"] >= start) & (data.interactions["ts"] < end)]
    window = window[window["rating"] > 0]
    u = catalog.users.positions(window["user_id"].tolist())
    i = catalog.items.positions(window["product_id"].tolist())
    out: dict[int, np.ndarray] = {}
    hist = seen.history
    for user in np.unique(u[u >= 0]).tolist():
        items = np.unique(i[(u == user) & (i >= 0)])
        items = items[~np.isin(items, hist.indices[hist.row(user)])]
        if len(items) and hist.indptr[user + 1] > hist.indptr[user]:  # evaluable: has history
            out[user] = items
    return out


def ranking_rows(
    data: Dataset, catalog: Catalog, cut: float, end: float, params: TrainParams
) -> RankingData:
    """Candidate lists built from data before `cut`, labelled by what users took in [cut, end)."""
    cm = stage_one(data, catalog, cut, params)
    xs, ys = [], []
    for user, positives in new_positives(data, catalog, cut, end, cm).items():
        c = cm.positions(user, params.n_candidates)
        y = np.isin(c.items, positives).astype(np.float32)
        if y.sum() == 0:
            continue  # a list without a positive teaches lambdarank nothing
        xs.append(pair_features(cm.store, user, c.items, c.scores))
        ys.append(y)
    return RankingData.stack(xs, ys)


def fit_two_stage(
    data: Dataset,
    catalog: Catalog,
    as_of: float,
    params: TrainParams,
    progress: ProgressFn,
    span: tuple[float, float],
) -> tuple[CandidateModel, RankingModel, float]:
    """Returns the two stages as of `as_of` and the ranker's best validation NDCG@10."""
    lo, hi = span
    w = params.label_days * DAY
    progress("features", lo)
    train = ranking_rows(data, catalog, as_of - 2 * w, as_of - w, params)
    valid = ranking_rows(data, catalog, as_of - w, as_of, params)
    if not len(train.groups):
        raise ValueError("no user took a candidate item in the training window: too little data")
    progress("ranker", lo + 0.5 * (hi - lo))
    ranker = fit_ranker(train, valid, params.num_boost_round, params.seed)
    valid_ndcg = float(ranker.booster.best_score.get("valid_0", {}).get("ndcg@10", float("nan")))
    progress("candidates", lo + 0.8 * (hi - lo))
    cm = stage_one(data, catalog, as_of, params)
    return cm, RankingModel(catalog, cm.store, ranker), valid_ndcg


def run_training(
    data: Dataset, params: TrainParams, progress: ProgressFn = _no_progress
) -> TrainOutput:
    progress("loading", 0.05)
    catalog = build_catalog(data)
    end = float(data.interactions["ts"].max()) + 1.0
    test_cut = end - params.test_days * DAY
    cm, rm, _ = fit_two_stage(data, catalog, test_cut, params, progress, (0.1, 0.45))
    progress("evaluation", 0.5)
    truth = new_positives(data, catalog, test_cut, end, cm)
    metrics = evaluate_two_stage(cm, rm, truth, k=10, n_candidates=params.n_candidates)
    # The served model is refit on everything, with the same recipe that was just evaluated.
    cm, rm, valid_ndcg = fit_two_stage(data, catalog, end, params, progress, (0.55, 0.9))
    metrics["valid_ndcg@10"] = valid_ndcg
    metrics["ranker_best_iteration"] = float(rm.ranker.best_iteration)
    progress("publishing", 0.95)
    artifacts = {
        CATALOG: catalog.to_bytes(),
        FEATURES: cm.store.to_bytes(),
        INDEX: cm.index.to_bytes(),
        RANKER: rm.ranker.to_text().encode(),
    }
    return TrainOutput(artifacts=artifacts, metrics=metrics)
