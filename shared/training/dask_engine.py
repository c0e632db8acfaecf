"""The ranker trained on a Dask cluster: `lightgbm.dask.DaskLGBMRanker`, data-parallel.

Same LightGBM parameters as local training (`shared.ml.stage_two.model.ranker_params`), same
output: a booster saved with `model_to_string()`, which the services load like any other version.

- Lambdarank needs each query (one user's candidate list) whole on one machine: the lists are
  cut into partitions at group boundaries only, and each partition travels with its own group
  sizes, so no list is ever split across workers.
- `lightgbm.dask` does not support early stopping (each worker would judge its own share of the
  validation data, and a worker stopping alone leaves the others waiting on the network). So the
  cluster fits `num_boost_round` trees; this process then scores the validation lists tree by
  tree, applies local training's rule (stop after `EARLY_STOPPING_ROUNDS` without a better
  NDCG@10, computed as LightGBM computes it) and keeps the trees up to the best iteration.
- The workers need `lightgbm`, `numpy` and `dask[distributed]`; they receive plain arrays, so
  the project itself is only needed on them for `ranking_rows_on_cluster`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import lightgbm as lgb
import numpy as np
from dask.delayed import delayed
from distributed import Client, Future
from lightgbm.dask import DaskLGBMRanker

from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_two.features import CATEGORICAL, FEATURE_NAMES
from shared.ml.stage_two.model import (
    EARLY_STOPPING_ROUNDS,
    RankerEnsemble,
    RankingData,
    ranker_params,
    stage_one_prior,
)
from shared.training.lists import ranking_rows
from shared.training.params import TrainParams

VALID_NAME = "valid_0"  # as lgb.train names its first validation set
NDCG_AT = 10
METRIC = f"ndcg@{NDCG_AT}"
# lgb.train's names -> the scikit-learn wrapper's, which DaskLGBMRanker takes. The wrapper has
# its own defaults under these names (min_child_samples=20, ...): given under the lgb.train
# name, a value would reach LightGBM next to the wrapper's default for the same parameter.
_SKLEARN_NAMES = {
    "min_data_in_leaf": "min_child_samples",
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "seed": "random_state",
}
# Set by the wrapper (objective of a ranker), by lightgbm.dask (each worker's threads), or not
# used: validation is scored here, after the fit.
_NOT_PASSED = {"objective", "num_threads", "metric", "eval_at"}

# One partition on a worker: feature rows, labels, group sizes (its lists, whole).
Part = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PartInfo:
    """Shape of one partition held by a worker."""

    rows: int
    groups: int


def partition_by_group(data: RankingData, n_parts: int) -> list[RankingData]:
    """Up to `n_parts` partitions of whole groups in their order, of similar row counts."""
    n_groups = len(data.groups)
    if n_groups == 0:
        return []
    n_parts = max(1, min(n_parts, n_groups))
    starts = np.concatenate([[0], np.cumsum(data.groups)])
    # Cut at the list boundary nearest to each even share of the rows.
    targets = starts[-1] * np.arange(1, n_parts) / n_parts
    after = np.searchsorted(starts, targets).clip(1, n_groups)
    nearest = np.where(targets - starts[after - 1] < starts[after] - targets, after - 1, after)
    cuts = np.unique(nearest.clip(1, n_groups - 1))
    edges = [0, *cuts.tolist(), n_groups]
    parts = []
    for g0, g1 in itertools.pairwise(edges):
        r0, r1 = int(starts[g0]), int(starts[g1])
        parts.append(RankingData(data.x[r0:r1], data.y[r0:r1], data.groups[g0:g1]))
    return parts


def fit_ranker_dask(
    train: RankingData,
    valid: RankingData,
    num_boost_round: int,
    seed: int,
    *,
    scheduler: str,
    parts_per_worker: int = 1,
    prior_weight: float = 0.0,
) -> RankerEnsemble:
    """`shared.ml.stage_two.model.fit_ranker`, the trees grown on the cluster at `scheduler`."""
    # The default client while it is open: lightgbm.dask waits on its parts through it.
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        parts = partition_by_group(train, n_workers * parts_per_worker)
        # Scattered round-robin over the workers; the arrays never go through the task graph.
        futures: list[Future[Part]] = client.scatter(
            [
                (p.x.astype(np.float32), p.y.astype(np.float32), p.groups.astype(np.int64))
                for p in parts
            ]
        )
        infos = [PartInfo(len(p.y), len(p.groups)) for p in parts]
        return fit_on_cluster(client, futures, infos, valid, num_boost_round, seed, prior_weight)


def fit_windows_on_cluster(
    windows: Sequence[tuple[CandidateStage, Mapping[str, dict[str, float]]]],
    valid: RankingData,
    params: TrainParams,
    parts_per_worker: int = 1,
) -> RankerEnsemble:
    """The ranker fitted on training lists that are built on the workers (one partition of
    users per worker and window) and never gathered: for lists too big for one machine."""
    if params.scheduler is None:
        raise ValueError("engine 'dask' needs a scheduler address (tcp://host:8786)")
    with Client(params.scheduler) as client:  # type: ignore[no-untyped-call]
        n_parts = max(1, len(client.scheduler_info()["workers"])) * parts_per_worker
        futures: list[Future[Part]] = []
        infos: list[PartInfo] = []
        for cm, labels in windows:
            f, i = ranking_rows_on_cluster(
                client, cm, labels, params.n_candidates, n_parts, params.graded_labels
            )
            futures += f
            infos += i
        return fit_on_cluster(
            client,
            futures,
            infos,
            valid,
            params.num_boost_round,
            params.seed,
            params.ranker_prior_weight,
        )


def fit_on_cluster(
    client: Client,
    parts: Sequence[Future[Part]],
    infos: Sequence[PartInfo],
    valid: RankingData,
    num_boost_round: int,
    seed: int,
    prior_weight: float = 0.0,
) -> RankerEnsemble:
    """Fit on partitions already on the workers: futures of (x, y, group sizes) tuples; the
    trees boost from `stage_one_prior` of each row (computed where the rows are)."""
    if not parts or sum(i.groups for i in infos) == 0:
        raise ValueError("no ranking lists to train on")
    n_features = len(FEATURE_NAMES)
    x = _column(parts, 0, [(i.rows, n_features) for i in infos], np.float32)
    y = _column(parts, 1, [(i.rows,) for i in infos], np.float32)
    group = _column(parts, 2, [(i.groups,) for i in infos], np.int64)
    init_score = (
        x.map_blocks(stage_one_prior, prior_weight, drop_axis=1, dtype=np.float64)  # type: ignore[arg-type]
        if prior_weight
        else None
    )
    params = ranker_params(seed)
    model = DaskLGBMRanker(client=client, n_estimators=num_boost_round, **sklearn_params(params))
    with warnings.catch_warnings():
        # The scikit-learn wrapper always carries `n_jobs`, and lightgbm.dask always says it
        # ignores it (each worker uses its own threads): noise, whatever the parameters.
        warnings.filterwarnings(
            "ignore", message=r"Parameter n_jobs will be ignored\.", category=UserWarning
        )
        model.fit(
            x,
            y,
            group=group,
            init_score=init_score,
            feature_name=FEATURE_NAMES,
            categorical_feature=CATEGORICAL,
            eval_at=[NDCG_AT],  # recorded in the model text, as local training does
        )
    return select_best_iteration(model.booster_, valid, prior_weight=prior_weight)


def sklearn_params(params: Mapping[str, object]) -> dict[str, Any]:
    """`ranker_params` under the names the scikit-learn wrapper (and DaskLGBMRanker) takes."""
    return {_SKLEARN_NAMES.get(k, k): v for k, v in params.items() if k not in _NOT_PASSED}


def _column(
    parts: Sequence[Future[Part]], index: int, shapes: list[tuple[int, ...]], dtype: type
) -> da.Array:
    """Field `index` of every partition as one Dask array, a chunk per partition."""
    chunks = [
        da.from_delayed(delayed(_getitem)(part, index), shape=shape, dtype=dtype)  # type: ignore[no-untyped-call]
        for part, shape in zip(parts, shapes, strict=True)
    ]
    return da.concatenate(chunks)  # type: ignore[no-untyped-call,no-any-return]


def _getitem(part: Part, index: int) -> np.ndarray:
    return np.asarray(part[index])


def select_best_iteration(
    booster: lgb.Booster,
    valid: RankingData,
    patience: int = EARLY_STOPPING_ROUNDS,
    prior_weight: float = 0.0,
) -> RankerEnsemble:
    """Early stopping after the fact: keep the trees up to the best validation NDCG@10.

    Without validation lists (or positives in them) every tree is kept, as lgb.train does.
    """
    if not len(valid.groups) or valid.y.sum() <= 0:
        return RankerEnsemble(
            lgb.Booster(model_str=booster.model_to_string()), prior_weight=prior_weight
        )
    curve = ndcg_curve(booster, valid, NDCG_AT, label_gain(booster.params), prior_weight)
    best = early_stopping_iteration(curve, patience)
    final = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    final.best_iteration = best
    final.best_score = {VALID_NAME: {METRIC: float(curve[best - 1])}}
    return RankerEnsemble(final, prior_weight=prior_weight)


def label_gain(params: Mapping[str, Any]) -> np.ndarray:
    """The gain of each relevance label under `params`: theirs, else LightGBM's 2^l - 1."""
    gain = params.get("label_gain")
    if gain is None:
        return np.exp2(np.arange(31)) - 1.0
    if isinstance(gain, str):  # as a booster loaded from text reports it
        return np.array([float(g) for g in gain.split(",")])
    return np.asarray(gain, dtype=np.float64)


def ndcg_curve(
    booster: lgb.Booster, data: RankingData, k: int, gain: np.ndarray, prior_weight: float = 0.0
) -> np.ndarray:
    """Mean NDCG@k of `data`'s lists after each boosting iteration (index 0 = one tree), the
    trees added to the stage-one prior they boosted from."""
    n_iter = booster.current_iteration()
    scores = stage_one_prior(data.x, prior_weight)
    curve = np.empty(n_iter, dtype=np.float64)
    for i in range(n_iter):
        scores += booster.predict(data.x, start_iteration=i, num_iteration=1, raw_score=True)
        curve[i] = lightgbm_ndcg(scores, data.y, data.groups, k, gain)
    return curve


def lightgbm_ndcg(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int, gain: np.ndarray
) -> float:
    """NDCG@k as LightGBM's `ndcg` metric computes it: `gain[label]` (label_gain), discount
    1/log2(rank + 1), ties in score kept in list order, a list without positives counts as 1,
    mean over lists."""
    n_groups, width = len(groups), int(groups.max())
    group_of = np.repeat(np.arange(n_groups), groups)
    starts = np.concatenate([[0], np.cumsum(groups)[:-1]])
    position = np.arange(len(scores)) - np.repeat(starts, groups)
    s = np.full((n_groups, width), -np.inf)
    s[group_of, position] = scores
    gains = np.zeros((n_groups, width))
    gains[group_of, position] = gain[labels.astype(np.int64)]
    top = min(k, width)
    discount = 1.0 / np.log2(np.arange(2, top + 2))
    order = np.argsort(-s, axis=1, kind="stable")[:, :top]
    dcg = np.take_along_axis(gains, order, axis=1) @ discount
    ideal = -np.sort(-gains, axis=1)[:, :top] @ discount
    ndcg = np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 1.0)
    return float(ndcg.mean())


def early_stopping_iteration(curve: np.ndarray, patience: int) -> int:
    """1-based best iteration under lgb.early_stopping's rule: the first strict maximum seen
    before `patience` iterations pass without improvement."""
    best = 0
    for i in range(1, len(curve)):
        if curve[i] > curve[best]:
            best = i
        elif i - best >= patience:
            break
    return best + 1


def ranking_rows_on_cluster(
    client: Client,
    cm: CandidateStage,
    labels: Mapping[str, dict[str, float]],
    n_candidates: int,
    n_parts: int,
    graded: bool = False,
) -> tuple[list[Future[Part]], list[PartInfo]]:
    """`pipeline.ranking_rows`, built on the workers, one partition of users each.

    For ranking lists too big for one machine (users x candidates x features): the stage-one
    model is sent once to every worker, each builds the lists of its users and keeps them;
    `fit_on_cluster` trains on the returned partitions where they lie.
    """
    users = sorted(labels)
    chunks = [c for c in np.array_split(np.array(users, dtype=object), n_parts) if len(c)]
    model = client.scatter(cm, broadcast=True)  # type: ignore[no-untyped-call]
    futures = [
        client.submit(
            _rows_part, model, {u: labels[u] for u in chunk}, n_candidates, graded, pure=False
        )
        for chunk in chunks
    ]
    shapes = client.gather([client.submit(_part_info, f) for f in futures])  # type: ignore[no-untyped-call]
    return futures, list(shapes)


def _rows_part(
    cm: CandidateStage, labels: dict[str, dict[str, float]], n_candidates: int, graded: bool
) -> Part:
    rows = ranking_rows(cm, labels, n_candidates, graded)
    return rows.x.astype(np.float32), rows.y.astype(np.float32), rows.groups.astype(np.int64)


def _part_info(part: Part) -> PartInfo:
    return PartInfo(len(part[1]), len(part[2]))
