"""Offline evaluation of a fitted two-stage model against held-out new items, in-process."""

from __future__ import annotations

import numpy as np

from shared.ml.metrics import evaluate_rankings, roc_auc
from shared.ml.model import CandidateModel, RankingModel


def evaluate_two_stage(
    cm: CandidateModel, rm: RankingModel, truth: dict[int, np.ndarray], k: int, n_candidates: int
) -> dict[str, float]:
    """Two-stage metrics (flat keys) plus popularity and candidates-only baselines, same users.

    Items a user had before the cut are excluded from lists (stage one drops them) and from truth.
    """
    two_stage: dict[int, list[int]] = {}
    cands_only: dict[int, list[int]] = {}
    popular: dict[int, list[int]] = {}
    reached, aucs = [], []
    for user, positives in truth.items():
        c = cm.positions(user, n_candidates)
        scores = rm.score_positions(user, c.items, c.scores)
        two_stage[user] = c.items[np.argsort(-scores, kind="stable")][:k].tolist()
        cands_only[user] = c.items[:k].tolist()
        seen = cm.history.indices[cm.history.row(user)]
        popular[user] = cm.index.popular(k, exclude=seen).tolist()
        labels = np.isin(c.items, positives)
        reached.append(labels.sum() / len(positives))
        if 0 < labels.sum() < len(labels):
            aucs.append(roc_auc(labels.astype(np.int8), scores))
    relevant = {u: set(p.tolist()) for u, p in truth.items()}
    n_items = cm.index.n_items
    metrics = evaluate_rankings(two_stage, relevant, k, n_items)
    for name, lists in (("popularity", popular), ("candidates_only", cands_only)):
        for key, value in evaluate_rankings(lists, relevant, k, n_items).items():
            metrics[f"{name}_{key}"] = value
    metrics[f"candidate_recall@{n_candidates}"] = float(np.mean(reached)) if reached else 0.0
    metrics["auc"] = float(np.mean(aucs)) if aucs else float("nan")
    metrics["n_test_users"] = float(len(truth))
    return metrics
