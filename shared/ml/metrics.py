"""Top-K ranking metrics over the full catalog, plus ROC AUC for the ranker's pointwise scores.

Binary relevance everywhere. A relevant item ranked twice counts once (at its first position), so
a buggy ranking with duplicates can never score above a clean one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

# Mapping keys are invariant: a TypeVar lets callers pass dict[str, ...] rather than
# dict[Hashable, ...].
UserT = TypeVar("UserT", bound=Hashable)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _hit_positions(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> list[int]:
    """0-based positions within the top k holding a relevant item (first occurrence only)."""
    found: set[Hashable] = set()
    positions = []
    for i, item in enumerate(ranked[:k]):
        if item in relevant and item not in found:
            found.add(item)
            positions.append(i)
    return positions


def precision_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Hits in the top k divided by k (not by len(ranked): short lists are not rewarded)."""
    _check_k(k)
    return len(_hit_positions(ranked, relevant, k)) / k


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    _check_k(k)
    if not relevant:
        return 0.0
    return len(_hit_positions(ranked, relevant, k)) / len(relevant)


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    _check_k(k)
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i in _hit_positions(ranked, relevant, k))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / idcg


def ndcg_curve(
    ranked: Sequence[Hashable], relevant: Collection[Hashable], max_k: int
) -> np.ndarray:
    """NDCG@k for k = 1..max_k in one pass (what `ndcg_at_k` gives for each k, k times faster)."""
    _check_k(max_k)
    if not relevant:
        return np.zeros(max_k)
    discount = 1.0 / np.log2(np.arange(max_k) + 2.0)
    gains = np.zeros(max_k)
    gains[_hit_positions(ranked, relevant, max_k)] = 1.0
    ideal = np.zeros(max_k)
    ideal[: min(len(relevant), max_k)] = 1.0
    curve: np.ndarray = np.cumsum(gains * discount) / np.cumsum(ideal * discount)
    return curve


def average_precision_at_k(
    ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int
) -> float:
    """Mean of precision@i over hit positions i, normalized by the best achievable hit count."""
    _check_k(k)
    if not relevant:
        return 0.0
    total = sum((n + 1) / (i + 1) for n, i in enumerate(_hit_positions(ranked, relevant, k)))
    return total / min(len(relevant), k)


def hit_rate_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    _check_k(k)
    return 1.0 if _hit_positions(ranked, relevant, k) else 0.0


def evaluate_rankings(
    rankings: Mapping[UserT, Sequence[Hashable]],
    relevant: Mapping[UserT, Collection[Hashable]],
    k: int,
    n_catalog: int,
) -> dict[str, float]:
    """Metrics averaged over users of `relevant` with at least one relevant item.

    Users without relevant items carry no signal and are skipped; a user the model returned nothing
    for still counts (with an empty ranking), so failing to answer is penalized. Coverage counts
    distinct items in the evaluated users' top k, relative to the catalog size.
    """
    _check_k(k)
    if n_catalog < 1:
        raise ValueError(f"n_catalog must be >= 1, got {n_catalog}")
    sums = dict.fromkeys(("precision", "recall", "ndcg", "map", "hit_rate"), 0.0)
    shown: set[Hashable] = set()
    n_users = 0
    for user, rel in relevant.items():
        if not rel:
            continue
        rel_set = rel if isinstance(rel, set | frozenset) else set(rel)
        top = list(rankings.get(user, ()))[:k]
        n_users += 1
        shown.update(top)
        sums["precision"] += precision_at_k(top, rel_set, k)
        sums["recall"] += recall_at_k(top, rel_set, k)
        sums["ndcg"] += ndcg_at_k(top, rel_set, k)
        sums["map"] += average_precision_at_k(top, rel_set, k)
        sums["hit_rate"] += hit_rate_at_k(top, rel_set, k)
    out = {f"{name}@{k}": (s / n_users if n_users else 0.0) for name, s in sums.items()}
    out[f"coverage@{k}"] = len(shown) / n_catalog
    return out


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """ROC AUC; 0.5 (chance) when only one class is present, where AUC is undefined.

    The Mann-Whitney form (ties count half, as in sklearn's roc_auc_score): evaluation calls this
    once per user, and sklearn's input validation alone cost more than the ranking it scores.
    """
    y = np.asarray(labels).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(np.asarray(scores, dtype=np.float64))  # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def paired_ratio_ci(
    ours: npt.ArrayLike,
    theirs: npt.ArrayLike,
    samples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """mean(ours) / mean(theirs) over the same users, with a percentile bootstrap interval.

    Users are resampled with replacement and both models keep each drawn user's own values
    (paired), so the interval says how much the ratio owes to which users happened to be in the
    test set, not to the models. NaN when `theirs` sums to zero or no user is given.
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"per-user values must be two 1-d arrays of one length: {a.shape}, {b.shape}"
        )
    if not 0 < level < 1 or samples < 1:
        raise ValueError(f"need 0 < level < 1 and samples >= 1, got {level}, {samples}")
    n = len(a)
    if n == 0 or b.sum() <= 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    ratios = np.empty(samples)
    chunk = max(1, 2_000_000 // n)  # bounded memory for large user sets
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        draw = rng.integers(0, n, size=(stop - start, n))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[start:stop] = a[draw].sum(axis=1) / b[draw].sum(axis=1)
    ratios[~np.isfinite(ratios)] = np.nan  # a draw whose baseline scored nothing has no ratio
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(ratios, [tail, 100 - tail])
    return float(a.sum() / b.sum()), float(lo), float(hi)
