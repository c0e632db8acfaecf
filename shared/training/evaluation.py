"""Offline evaluation: fit every model on one split's training part, score all on its held-out
items over the full catalog, with each user's training items excluded from the ranked lists."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shared.ml.baselines import ALS, EASE, ItemKNN, Popularity, Recommender
from shared.ml.catalog import Catalog
from shared.ml.memory import ModelTooLarge, PeakRss
from shared.ml.metrics import evaluate_rankings, ndcg_at_k, ndcg_curve, paired_ratio_ci, roc_auc
from shared.schemas.models import EvaluationSummary
from shared.training.params import TrainParams
from shared.training.pipeline import LabelScheme, fit_two_stage
from shared.training.splits import Split

CURVE_MAX_K = 50
# Test users whose candidate lists the ranker scores in one call (~40 MB of features at 200)
SCORED_TOGETHER = 512
BOOTSTRAP_SAMPLES = 2000


def baselines() -> list[Recommender]:
    """What the pipeline is compared with: in `recsys evaluate`, and on validation when training
    chooses what to serve (each skipped where it is too big for the catalog)."""
    return [Popularity(), ItemKNN(), EASE(), ALS()]


@dataclass
class Evaluation:
    k: int
    n_users: int
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    ndcg_curves: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    # two_stage against the best baseline: NDCG@K ratio with a paired bootstrap interval
    versus: dict[str, object] = field(default_factory=dict)
    # baselines refused before they allocated (too big for this machine), with the reason
    skipped: dict[str, str] = field(default_factory=dict)

    def flat(self, main: str = "two_stage") -> dict[str, float]:
        """One flat dict for a model manifest: `main`'s metrics bare, the others prefixed."""
        out = dict(self.models[main])
        for name, metrics in self.models.items():
            if name != main:
                out.update({f"{name}_{key}": value for key, value in metrics.items()})
        out.update(self.extra)
        out["n_test_users"] = float(self.n_users)
        return out

    def summary(self, protocol: str) -> EvaluationSummary:
        """What a manifest keeps for the UI's plots (a few KB of JSON). Non-finite numbers are
        left out: JSON has no NaN, and a missing metric reads as "not measured"."""
        return EvaluationSummary(
            protocol=protocol,
            k=self.k,
            n_users=self.n_users,
            models={
                name: {key: v for key, v in metrics.items() if math.isfinite(v)}
                for name, metrics in self.models.items()
            },
            ndcg_curves={
                name: [round(v, 6) for v in curve]
                for name, curve in self.ndcg_curves.items()
                if all(math.isfinite(v) for v in curve)
            },
        )


def train_matrix(split: Split, catalog: Catalog) -> sp.csr_matrix:
    ints = split.train.interactions
    u = catalog.users.positions(ints["user_id"].tolist())
    i = catalog.items.positions(ints["product_id"].tolist())
    m = sp.csr_matrix(
        (ints["rating"].to_numpy(dtype=np.float64), (u, i)),
        shape=(len(catalog.users), len(catalog.items)),
    )
    m.sum_duplicates()
    return m


def evaluate_split(
    split: Split,
    catalog: Catalog,
    params: TrainParams,
    k: int,
    baselines: Sequence[Recommender],
    progress: Callable[[str], None] = lambda name: None,
) -> Evaluation:
    users = sorted(catalog.users.get(u) for u in split.truth)
    relevant = {
        catalog.users.get(u): set(catalog.items.positions(sorted(v)).tolist())
        for u, v in split.truth.items()
    }
    depth = max(k, CURVE_MAX_K)
    lists: dict[str, dict[int, list[int]]] = {}
    seconds: dict[str, float] = {}
    x = train_matrix(split, catalog)
    user_arr = np.array(users, dtype=np.int64)
    peaks: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for model in baselines:
        progress(model.name)
        start = time.perf_counter()
        try:
            with PeakRss() as peak:
                model.fit(x)
                ranked = model.recommend(user_arr, depth, x)
        except ModelTooLarge as exc:  # refused before allocating: skipped, with the reason
            skipped[model.name] = str(exc)
            progress(f"{model.name} skipped: {exc}")
            continue
        seconds[model.name] = time.perf_counter() - start
        peaks[model.name] = peak.mb
        lists[model.name] = {
            u: [i for i in row if i >= 0] for u, row in zip(users, ranked.tolist(), strict=True)
        }

    progress("two_stage")
    start = time.perf_counter()
    scheme: LabelScheme = "temporal" if split.protocol == "temporal" else "random"
    with PeakRss() as peak:
        cm, rm, valid_ndcg = fit_two_stage(split.train, catalog, params, scheme)
    peaks["two_stage"] = peaks["candidates_only"] = peak.mb
    two, cands, reached, aucs = {}, {}, [], []
    for block_start in range(0, len(users), SCORED_TOGETHER):
        block = users[block_start : block_start + SCORED_TOGETHER]
        found = [cm.positions(u, max(params.n_candidates, depth)) for u in block]
        for u, c, scores in zip(block, found, rm.score_many(block, found), strict=True):
            two[u] = c.items[np.argsort(-scores, kind="stable")][:depth].tolist()
            cands[u] = c.items[:depth].tolist()
            labels = np.isin(c.items, list(relevant[u]))
            reached.append(labels.sum() / len(relevant[u]))
            if 0 < labels.sum() < len(labels):
                aucs.append(roc_auc(labels.astype(np.int8), scores))
    seconds["two_stage"] = seconds["candidates_only"] = time.perf_counter() - start
    lists["candidates_only"], lists["two_stage"] = cands, two

    result = Evaluation(k=k, n_users=len(users))
    for name, per_user in lists.items():
        metrics = evaluate_rankings(per_user, relevant, k, len(catalog.items))
        metrics["fit_seconds"] = seconds[name]
        metrics["peak_rss_mb"] = peaks[name]
        result.models[name] = metrics
        curves = [ndcg_curve(per_user[u], relevant[u], CURVE_MAX_K) for u in users]
        mean = np.mean(curves, axis=0) if curves else np.zeros(CURVE_MAX_K)
        result.ndcg_curves[name] = [float(x) for x in mean]
    result.skipped = skipped
    result.versus = versus_best_baseline(
        lists, relevant, users, k, [m.name for m in baselines if m.name in lists], result.models
    )
    result.extra = {
        f"candidate_recall@{max(params.n_candidates, depth)}": float(np.mean(reached))
        if reached
        else 0.0,
        "ranker_auc": float(np.mean(aucs)) if aucs else float("nan"),
        "ranker_valid_ndcg@10": valid_ndcg,
    }
    return result


def versus_best_baseline(
    lists: dict[str, dict[int, list[int]]],
    relevant: dict[int, set[int]],
    users: Sequence[int],
    k: int,
    baselines: Sequence[str],
    models: dict[str, dict[str, float]],
    main: str = "two_stage",
) -> dict[str, object]:
    """`main` against the baseline with the best NDCG@K, user by user: the ratio of their mean
    NDCG@K and its 95 % paired bootstrap interval over the evaluated users."""
    if not baselines:
        return {}
    best = max(baselines, key=lambda name: models[name][f"ndcg@{k}"])
    scored = [u for u in users if relevant[u]]
    ratio, lo, hi = paired_ratio_ci(
        [ndcg_at_k(lists[main][u], relevant[u], k) for u in scored],
        [ndcg_at_k(lists[best][u], relevant[u], k) for u in scored],
        samples=BOOTSTRAP_SAMPLES,
    )
    return {
        "model": main,
        "baseline": best,
        f"ndcg@{k}_ratio": ratio,
        "ci95": [lo, hi],
        "bootstrap_samples": BOOTSTRAP_SAMPLES,
    }
