"""Probe whether a stacked ranker, session-weighted EASE, a time-span filter or a low-pass filter
beats plain EASE on MovieLens 100K.

    .venv/bin/python -m research.probe_stacking --data-path ../shared/data/movielens-100k \
        --seeds 7,8,9,10

Backs the rows of docs/benchmarks.md on why a stacked LightGBM ranker does not beat EASE on
ML-100K. Validation splits only: per seed, the msr split's training part (`msr_split`) is split
again per user 75/25 with that seed, and only that held-out quarter is scored; the msr test split
is never scored here. Four experiments, each reported per seed as NDCG@10 and a ratio to EASE:

- stack: EASE (l2 = 500) proposes each user's top 100 items; LightGBM lambdarank re-orders them
  from features of five CF models (EASE, user k-NN, item k-NN, RP3beta, SVD: each model's score,
  its rank over the whole catalog, and its score relative to the user's best) plus the item's
  popularity and the user's activity. The ranker learns on a second per-user split of the fitting
  part (`--inner-ratio`, seed + 1): features from its first part, labels from the rest. A fifth of
  the users stop the training early (30 rounds without gain); five such models with seeds
  seed..seed+4 are averaged. `--features` keeps only the named features (in that order).
- session: EASE whose Gram matrix also counts, with weight w, the item pairs that one user rated
  within a window of each other (1 h and 24 h; the pair of an item with itself included), l2 scaled
  to 500 * (1 + w / 2) for the heavier diagonal, against plain EASE (l2 = 500).
- span: plain EASE with the items outside the user's time span pushed below all others: first
  rated by anyone more than a margin (0, 1, 7, 30 days) after the user's last rating, or (the
  second ratio) also last rated more than the margin before their first.
- lowpass: EASE plus an ideal low-pass filter (GF-CF, Shen et al. 2021): the top k right
  singular vectors V of the user x item matrix normalised by 1/sqrt(user and item degrees), item
  weights D^-1/2 V V^T D^1/2, its scores scaled to a times the spread of EASE's; for k 16/32/48
  and a 0.3/0.5/0.8, and as the pipeline's stage one has it (k 32, a 0.5) beside EASE pruned to
  its 100 strongest weights per item (`top100+lp32`), against that pruned EASE alone (`top100`).

The stack experiment's EASE is shared.ml.baselines.EASE; the session experiment inverts its Gram
matrices itself (np.linalg.inv, plain EASE included), as that class only fits from interactions.
Both give identical NDCG@10 for plain EASE on these splits (checked for seeds 7 to 10).

Prints a line per seed and experiment, then tables; writes everything to `--out` as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from rich.console import Console
from rich.table import Table

from shared.datasets.base import Dataset
from shared.datasets.movielens import load
from shared.ml.baselines import EASE
from shared.ml.metrics import ndcg_at_k
from shared.ml.top_lists import top_k
from shared.training.splits import held_out_truth, msr_split, per_user_random_split

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

DEFAULT_OUT = Path("var/bench/probe_stacking.json")
K = 10  # NDCG@K everywhere
VALID_RATIO = 0.75  # share of the msr training part each user keeps for fitting
EASE_L2 = 500.0
LIST_LEN = 100  # EASE's top items per user that the ranker re-orders
USER_KNN_NEIGHBOURS = 50
SVD_FACTORS = 60
RP3_ALPHA, RP3_BETA = 1.0, 0.5
EARLY_STOP_EVERY = 5  # one user in 5 only decides when a ranker stops
N_RANKERS = 5  # averaged LightGBM models, seeds seed..seed+4
MAX_ROUNDS = 1000
EARLY_STOP_ROUNDS = 30
RANKER_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "verbose": -1,
    "eval_at": [K],
    "lambdarank_truncation_level": 20,
}
SESSION_HOURS = (1, 24)
SPAN_MARGIN_DAYS = (0, 1, 7, 30)
DAY = 86_400
SESSION_WEIGHTS = (0.5, 1.0, 2.0)
HOUR = 3600
LOWPASS_DIMS = (16, 32, 48)
LOWPASS_WEIGHTS = (0.3, 0.5, 0.8)
PRUNED_NEIGHBOURS = 100  # the pipeline's graph_neighbours

# Tables stay readable when piped or logged (rich would otherwise squeeze them to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 140)


# ------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Catalog:
    """Row and column positions of every user and item of the whole data set (ids sorted)."""

    users: dict[str, int]
    items: dict[str, int]

    @classmethod
    def of(cls, interactions: pd.DataFrame) -> Catalog:
        users = sorted(interactions["user_id"].unique())
        items = sorted(interactions["product_id"].unique())
        return cls({u: k for k, u in enumerate(users)}, {i: k for k, i in enumerate(items)})

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.users), len(self.items)

    def positions(self, rows: pd.DataFrame) -> tuple[Ints, Ints]:
        users = np.asarray(rows["user_id"].map(self.users), dtype=np.int64)
        items = np.asarray(rows["product_id"].map(self.items), dtype=np.int64)
        return users, items

    def matrix(self, rows: pd.DataFrame) -> sp.csr_matrix:
        """Binary users x items matrix of `rows`."""
        users, items = self.positions(rows)
        x = sp.csr_matrix((np.ones(len(rows)), (users, items)), shape=self.shape)
        x.data[:] = 1.0  # duplicates (summed above) count once
        return x

    def truth(self, held: dict[str, set[str]]) -> list[set[int]]:
        """Per user row, the item positions held out for them (empty for users without any)."""
        out: list[set[int]] = [set() for _ in self.users]
        for user, items in held.items():
            out[self.users[user]] = {self.items[i] for i in items}
        return out


@dataclass(frozen=True)
class Fold:
    """A fitting part and, per user, the items held out from it."""

    fit: pd.DataFrame
    truth: dict[str, set[str]]


def split_fold(interactions: pd.DataFrame, ratio: float, seed: int) -> Fold:
    fit, held = per_user_random_split(interactions.reset_index(drop=True), ratio, seed)
    return Fold(fit, held_out_truth(fit, held))


def validation_fold(data: Dataset, seed: int) -> Fold:
    """The msr split's training part, split again per user 75/25 with `seed`."""
    return split_fold(msr_split(data).train.interactions, VALID_RATIO, seed)


def mean_ndcg(lists: Ints, truth: Sequence[set[int]], users: Sequence[int] | None = None) -> float:
    """Mean NDCG@K over `users` (default: all rows) with at least one held-out item."""
    rows = range(len(truth)) if users is None else users
    scores = [ndcg_at_k(lists[u, :K].tolist(), truth[u], K) for u in rows if truth[u]]
    return statistics.fmean(scores)


# ------------------------------------------------------------------------------------------------
# Collaborative-filtering scores: dense users x items, from a binary users x items matrix


def ease_scores(x: sp.csr_matrix) -> Floats:
    model = EASE(EASE_L2)
    model.fit(x)
    return np.asarray(x @ model.item_weights, dtype=np.float64)


def user_knn_scores(x: sp.csr_matrix) -> Floats:
    """Cosine user-user similarity kept for each user's USER_KNN_NEIGHBOURS nearest users."""
    xd = x.toarray()
    norm = np.sqrt(xd.sum(1)) + 1e-9
    sim = (xd @ xd.T) / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0)
    dropped = np.argpartition(-sim, USER_KNN_NEIGHBOURS, axis=1)[:, USER_KNN_NEIGHBOURS:]
    np.put_along_axis(sim, dropped, 0, axis=1)
    return np.asarray(sim @ xd, dtype=np.float64)


def item_knn_scores(x: sp.csr_matrix) -> Floats:
    """Cosine item-item similarity, unpruned."""
    xd = x.toarray()
    norm = np.sqrt(xd.sum(0)) + 1e-9
    sim = (xd.T @ xd) / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0)
    return np.asarray(xd @ sim, dtype=np.float64)


def rp3_scores(x: sp.csr_matrix) -> Floats:
    """RP3beta: user -> item -> user -> item random walk, damped by popularity ** RP3_BETA."""
    xd = x.toarray()
    p_ui = xd / np.maximum(xd.sum(1, keepdims=True), 1)
    p_iu = xd.T / np.maximum(xd.T.sum(1, keepdims=True), 1)
    w = (p_iu**RP3_ALPHA) @ (p_ui**RP3_ALPHA)
    w /= np.maximum(xd.sum(0), 1)[None, :] ** RP3_BETA
    np.fill_diagonal(w, 0)
    return np.asarray(xd @ w, dtype=np.float64)


def svd_scores(x: sp.csr_matrix) -> Floats:
    """Projection of each user's row on the top SVD_FACTORS right singular vectors."""
    _, _, vt = spla.svds(x, k=SVD_FACTORS, random_state=0)
    return np.asarray(x @ vt.T @ vt, dtype=np.float64)


CF_MODELS: dict[str, Callable[[sp.csr_matrix], Floats]] = {
    "ease": ease_scores,
    "uknn": user_knn_scores,
    "iknn": item_knn_scores,
    "rp3": rp3_scores,
    "svd": svd_scores,
}
FEATURES = [f"{m}{suffix}" for m in CF_MODELS for suffix in ("", "_rel", "_rank")] + ["pop", "act"]


# ------------------------------------------------------------------------------------------------
# Experiment "stack"


@dataclass(frozen=True)
class Lists:
    """EASE's top LIST_LEN unseen items per user, each with every feature."""

    items: Ints  # (users, LIST_LEN) item positions, EASE's order
    features: dict[str, Floats]  # name -> (users, LIST_LEN)

    def stacked(self, names: Sequence[str]) -> Floats:
        return np.stack([self.features[n] for n in names], axis=-1)


def candidate_lists(x: sp.csr_matrix) -> Lists:
    seen = x.nonzero()
    scores = {name: model(x) for name, model in CF_MODELS.items()}
    top = top_k(scores["ease"], LIST_LEN, x)
    features: dict[str, Floats] = {}
    for name, full in scores.items():
        value = np.take_along_axis(full, top, axis=1)
        # EASE's own list is in score order, so its first score is its best.
        best = value[:, :1] if name == "ease" else value.max(axis=1, keepdims=True)
        masked = full.copy()
        masked[seen] = -np.inf
        rank = np.argsort(np.argsort(-masked, axis=1), axis=1)  # over the whole unseen catalog
        features[name] = value
        features[f"{name}_rel"] = value / np.maximum(best, 1e-9)
        features[f"{name}_rank"] = np.take_along_axis(rank, top, axis=1).astype(np.float64)
    popularity = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
    activity = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    features["pop"] = np.log1p(popularity[top])
    features["act"] = np.repeat(np.log1p(activity)[:, None], LIST_LEN, axis=1)
    return Lists(top, features)


def labels(lists: Lists, truth: Sequence[set[int]]) -> Bools:
    """(users, LIST_LEN): whether each listed item is held out for its user."""
    rows = enumerate(lists.items.tolist())
    return np.array([[i in truth[u] for i in row] for u, row in rows], dtype=bool)


def ranker_data(
    x: Floats, y: Bools, users: Ints, reference: lgb.Dataset | None = None
) -> lgb.Dataset:
    """One query per user of `users` with at least one positive in their list."""
    users = users[y[users].any(axis=1)]
    return lgb.Dataset(
        x[users].reshape(-1, x.shape[-1]),
        y[users].ravel().astype(int),
        group=[LIST_LEN] * len(users),
        reference=reference,
        free_raw_data=False,
    )


def run_stack(
    cat: Catalog, fold: Fold, seed: int, features: Sequence[str], inner_ratio: float
) -> dict[str, Any]:
    """EASE's lists re-ordered by averaged lambdarank models, against EASE's own order."""
    inner = split_fold(fold.fit, inner_ratio, seed + 1)
    learn, learn_truth = candidate_lists(cat.matrix(inner.fit)), cat.truth(inner.truth)
    score, score_truth = candidate_lists(cat.matrix(fold.fit)), cat.truth(fold.truth)
    x_learn, y_learn = learn.stacked(features), labels(learn, learn_truth)
    x_score = score.stacked(features)

    n_users = len(cat.users)
    rng = np.random.default_rng(seed)
    stop_users = rng.permutation(n_users)[: n_users // EARLY_STOP_EVERY]
    fit_users = np.setdiff1d(np.arange(n_users), stop_users)
    predictions = np.zeros(score.items.shape)
    inner_predictions = np.zeros(learn.items.shape)
    rounds = []
    for j in range(N_RANKERS):
        params = {**RANKER_PARAMS, "seed": seed + j}
        train = ranker_data(x_learn, y_learn, fit_users)
        valid = ranker_data(x_learn, y_learn, stop_users, reference=train)
        booster = lgb.train(
            params,
            train,
            MAX_ROUNDS,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(EARLY_STOP_ROUNDS, verbose=False)],
        )
        rounds.append(int(booster.best_iteration))
        scores = np.asarray(booster.predict(x_score.reshape(-1, len(features))))
        predictions += scores.reshape(predictions.shape)
        on_learn = np.asarray(booster.predict(x_learn.reshape(-1, len(features))))
        inner_predictions += on_learn.reshape(inner_predictions.shape)
    order = np.argsort(-predictions, axis=1, kind="stable")
    reranked = np.take_along_axis(score.items, order, axis=1)

    ease = mean_ndcg(score.items, score_truth)
    stacked = mean_ndcg(reranked, score_truth)
    return {
        "seed": seed,
        "ease_ndcg": ease,
        "stack_ndcg": stacked,
        "ratio": stacked / ease,
        "best_iterations": rounds,
        # EASE's own order on the early-stopping users' inner lists: what the ranker must beat
        # on the lists it learns from.
        "inner_stop_ease_ndcg": mean_ndcg(learn.items, learn_truth, stop_users.tolist()),
        # ...and the ranker's order there (optimistic: those users also stopped its training).
        "inner_stop_stack_ndcg": mean_ndcg(
            np.take_along_axis(
                learn.items, np.argsort(-inner_predictions, axis=1, kind="stable"), axis=1
            ),
            learn_truth,
            stop_users.tolist(),
        ),
    }


# ------------------------------------------------------------------------------------------------
# Experiment "session"


def ease_weights(gram: Floats, l2: float) -> Floats:
    """EASE's item weights from a Gram matrix (the same closed form as shared.ml.baselines.EASE,
    which only fits from an interaction matrix)."""
    g = gram.copy()
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = p / -np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def session_gram(cat: Catalog, rows: pd.DataFrame, hours: float) -> Floats:
    """Item x item counts of the pairs of rows by one user at most `hours` apart (each row with
    itself included, so the diagonal counts each item's users)."""
    users, items = cat.positions(rows)
    ts = rows["ts"].to_numpy(dtype=np.int64)
    window = int(hours * HOUR)
    # One sort key, user first then time, spaced so that no window reaches another user's rows.
    span = int(ts.max() - ts.min()) + window + 1
    key = users * span + (ts - ts.min())
    order = np.argsort(key, kind="stable")
    key, items = key[order], items[order]
    lo = np.searchsorted(key, key - window, side="left")
    hi = np.searchsorted(key, key + window, side="right")
    count = hi - lo
    first = np.repeat(np.arange(len(key)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    second = lo[first] + offset
    pairs = sp.coo_matrix(
        (np.ones(len(first)), (items[first], items[second])), shape=(cat.shape[1],) * 2
    )
    return np.asarray(pairs.toarray(), dtype=np.float64)  # duplicates summed


def ease_ndcg(x: sp.csr_matrix, weights: Floats, truth: Sequence[set[int]]) -> float:
    return mean_ndcg(top_k(np.asarray(x @ weights), K, x), truth)


def session_key(hours: float, weight: float) -> str:
    return f"{hours:g}h w{weight:g}"


def run_session(cat: Catalog, fold: Fold, seed: int) -> dict[str, Any]:
    """Session-weighted EASE against plain EASE, both with np.linalg.inv of the same Gram."""
    x, truth = cat.matrix(fold.fit), cat.truth(fold.truth)
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
    base = ease_ndcg(x, ease_weights(gram, EASE_L2), truth)
    ratios: dict[str, float] = {}
    for hours in SESSION_HOURS:
        pairs = session_gram(cat, fold.fit, hours)
        for w in SESSION_WEIGHTS:
            weights = ease_weights(gram + w * pairs, EASE_L2 * (1 + w / 2))
            ratios[session_key(hours, w)] = ease_ndcg(x, weights, truth) / base
    return {"seed": seed, "ease_ndcg": base, "ratios": ratios}


# ------------------------------------------------------------------------------------------------
# Experiment "span"


def run_span(cat: Catalog, fold: Fold, seed: int) -> dict[str, Any]:
    """Plain EASE, then with the items out of each user's time span pushed to the end."""
    x, truth = cat.matrix(fold.fit), cat.truth(fold.truth)
    scores = ease_scores(x)
    base = mean_ndcg(top_k(scores, K, x), truth)
    users, items = cat.positions(fold.fit)
    ts = fold.fit["ts"].to_numpy(dtype=np.float64)
    n_users, n_items = cat.shape

    def extreme(at: Ints, n: int, first: bool) -> Floats:
        out = np.full(n, np.inf if first else -np.inf)
        (np.minimum if first else np.maximum).at(out, at, ts)
        return out

    item_first, item_last = extreme(items, n_items, True), extreme(items, n_items, False)
    user_first, user_last = extreme(users, n_users, True), extreme(users, n_users, False)
    ratios: dict[str, float] = {}
    for days in SPAN_MARGIN_DAYS:
        margin = days * DAY
        late = item_first[None, :] > user_last[:, None] + margin
        early = item_last[None, :] < user_first[:, None] - margin
        pushed = scores - 1e3 * late  # below every in-span score (EASE scores are far smaller)
        ratios[f"late {days}d"] = mean_ndcg(top_k(pushed, K, x), truth) / base
        ratios[f"+early {days}d"] = mean_ndcg(top_k(pushed - 1e3 * early, K, x), truth) / base
    return {"seed": seed, "ease_ndcg": base, "ratios": ratios}


# ------------------------------------------------------------------------------------------------
# Experiment "lowpass"


def lowpass_weights(x: Floats, dims: int) -> Floats:
    """Item x item weights D^-1/2 V V^T D^1/2 from the top `dims` right singular vectors V of
    D_u^-1/2 X D^-1/2 (D: item degrees, D_u: user degrees)."""
    item_deg = np.maximum(x.sum(axis=0), 1.0)
    user_deg = np.maximum(x.sum(axis=1), 1.0)
    norm = x / np.sqrt(user_deg)[:, None] / np.sqrt(item_deg)[None, :]
    v = np.linalg.svd(norm, full_matrices=False)[2][:dims].T
    weights: Floats = (v / np.sqrt(item_deg)[:, None]) @ (v.T * np.sqrt(item_deg)[None, :])
    return weights


def pruned(weights: Floats, keep: int) -> Floats:
    """Each row's `keep` largest weights, the rest 0."""
    idx = np.argpartition(-weights, keep - 1, axis=1)[:, :keep]
    out = np.zeros_like(weights)
    np.put_along_axis(out, idx, np.take_along_axis(weights, idx, axis=1), axis=1)
    return out


def run_lowpass(cat: Catalog, fold: Fold, seed: int) -> dict[str, Any]:
    """EASE plus a low-pass filter, and the pipeline's pruned graph with and without one."""
    x, truth = cat.matrix(fold.fit), cat.truth(fold.truth)
    dense = np.asarray(x.toarray(), dtype=np.float64)
    ease = ease_weights(dense.T @ dense, EASE_L2)
    base = ease_ndcg(x, ease, truth)
    ratios: dict[str, float] = {}
    for dims in LOWPASS_DIMS:
        lowpass = lowpass_weights(dense, dims)
        scale = np.std(dense @ ease) / np.std(dense @ lowpass)
        for a in LOWPASS_WEIGHTS:
            ratios[f"lp{dims} a{a:g}"] = ease_ndcg(x, ease + a * scale * lowpass, truth) / base
    top = pruned(ease, PRUNED_NEIGHBOURS)
    lowpass = lowpass_weights(dense, 32)
    scale = np.std(dense @ top) / np.std(dense @ lowpass)
    ratios[f"top{PRUNED_NEIGHBOURS}"] = ease_ndcg(x, top, truth) / base
    ratios[f"top{PRUNED_NEIGHBOURS}+lp32"] = ease_ndcg(x, top + 0.5 * scale * lowpass, truth) / base
    return {"seed": seed, "ease_ndcg": base, "ratios": ratios}


# ------------------------------------------------------------------------------------------------
# Report


def mean_sd(values: Sequence[float]) -> str:
    spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.4f}{spread}"


def stack_table(rows: list[dict[str, Any]], features: Sequence[str]) -> Table:
    shown = "all features" if list(features) == FEATURES else ", ".join(features)
    table = Table(title=f"stack: EASE top {LIST_LEN} re-ordered by LightGBM ({shown})")
    for col in ("seed", "EASE NDCG@10", "stacked NDCG@10", "ratio", "iterations"):
        table.add_column(col, justify="right")
    for r in rows:
        iters = ",".join(str(i) for i in r["best_iterations"])
        table.add_row(
            str(r["seed"]),
            f"{r['ease_ndcg']:.4f}",
            f"{r['stack_ndcg']:.4f}",
            f"{r['ratio']:.4f}",
            iters,
        )
    table.add_row(
        "mean",
        *(mean_sd([r[key] for r in rows]) for key in ("ease_ndcg", "stack_ndcg", "ratio")),
        "",
    )
    return table


def ratio_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    keys = list(rows[0]["ratios"])
    for col in ("seed", "EASE NDCG@10", *keys):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["seed"]), f"{r['ease_ndcg']:.4f}", *(f"{r['ratios'][k]:.4f}" for k in keys)
        )
    table.add_row(
        "mean",
        mean_sd([r["ease_ndcg"] for r in rows]),
        *(mean_sd([r["ratios"][k] for r in rows]) for k in keys),
    )
    return table


def parse_features(text: str) -> list[str]:
    names = [n for n in text.split(",") if n] if text else list(FEATURES)
    unknown = [n for n in names if n not in FEATURES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown features {unknown}; known: {FEATURES}")
    return names


def report_ratios(experiment: str, r: dict[str, Any], start: float) -> None:
    shown = " ".join(f"{k} {v:.4f}" for k, v in r["ratios"].items())
    took = time.perf_counter() - start
    print(
        f"{experiment} seed {r['seed']}: EASE {r['ease_ndcg']:.4f} {shown} ({took:.0f} s)",
        flush=True,
    )


# name -> (run per seed, table title)
RATIO_EXPERIMENTS: dict[str, tuple[Callable[[Catalog, Fold, int], dict[str, Any]], str]] = {
    "session": (run_session, "session: session-weighted EASE / plain EASE (NDCG@10)"),
    "span": (run_span, "span: EASE with out-of-span items pushed down / plain EASE (NDCG@10)"),
    "lowpass": (run_lowpass, "lowpass: EASE (or its top 100) + low-pass filter / EASE (NDCG@10)"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-path", type=Path, required=True, help="MovieLens 100K folder")
    parser.add_argument("--seeds", default="7,8,9,10", help="comma-separated validation seeds")
    parser.add_argument(
        "--experiments",
        default="stack,session,span,lowpass",
        help="comma-separated: stack, session, span, lowpass",
    )
    parser.add_argument(
        "--features",
        type=parse_features,
        default=list(FEATURES),
        help=f"stack: comma-separated ranker features (default all: {','.join(FEATURES)})",
    )
    parser.add_argument(
        "--inner-ratio", type=float, default=0.75, help="stack: the ranker's learning split"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    experiments = [e for e in args.experiments.split(",") if e]
    if unknown := set(experiments) - {"stack", *RATIO_EXPERIMENTS}:
        parser.error(f"unknown experiments {sorted(unknown)}")
    if not 0 < args.inner_ratio < 1:
        parser.error("--inner-ratio must be between 0 and 1")

    data, _ = load(args.data_path)
    cat = Catalog.of(data.interactions)
    results: dict[str, list[dict[str, Any]]] = {e: [] for e in experiments}
    for seed in seeds:
        fold = validation_fold(data, seed)
        if "stack" in experiments:
            start = time.perf_counter()
            r = run_stack(cat, fold, seed, args.features, args.inner_ratio)
            results["stack"].append(r)
            print(
                f"stack seed {seed}: EASE {r['ease_ndcg']:.4f} stacked {r['stack_ndcg']:.4f} "
                f"ratio {r['ratio']:.4f}; on its own lists' stopping users EASE "
                f"{r['inner_stop_ease_ndcg']:.4f} stacked {r['inner_stop_stack_ndcg']:.4f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        for name, (run, _) in RATIO_EXPERIMENTS.items():
            if name in experiments:
                start = time.perf_counter()
                r = run(cat, fold, seed)
                results[name].append(r)
                report_ratios(name, r, start)

    if "stack" in results:
        console.print(stack_table(results["stack"], args.features))
    for name, (_, title) in RATIO_EXPERIMENTS.items():
        if name in results:
            console.print(ratio_table(results[name], title))
    config = {
        "data_path": str(args.data_path),
        "split": f"validation: msr training part, per user {VALID_RATIO:.0%} / rest, per seed",
        "seeds": seeds,
        "k": K,
        "ease_l2": EASE_L2,
        "list_len": LIST_LEN,
        "features": args.features,
        "inner_ratio": args.inner_ratio,
        "ranker_params": RANKER_PARAMS,
        "n_rankers": N_RANKERS,
        "early_stopping_rounds": EARLY_STOP_ROUNDS,
        "lightgbm": lgb.__version__,
    }
    summary: dict[str, Any] = {}
    if rows := results.get("stack"):
        summary["stack_ratio_mean"] = statistics.fmean(r["ratio"] for r in rows)
    for name in RATIO_EXPERIMENTS:
        if rows := results.get(name):
            summary[f"{name}_ratio_mean"] = {
                k: statistics.fmean(r["ratios"][k] for r in rows) for k in rows[0]["ratios"]
            }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"config": config, **results, "summary": summary}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
