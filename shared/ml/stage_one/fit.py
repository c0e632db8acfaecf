"""Fitting stage one: item embeddings, EASE neighbour graph, low-rank filter, content vectors.

Training code only: the candidate service never imports it (it loads `index.CandidateIndex`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from shared.ml.baselines import ALS, EASE, ItemKNN, binarize
from shared.ml.interactions import UserItemStats
from shared.ml.stage_one.fold_in import FoldIn
from shared.ml.stage_one.graph_product import dense_form, times_graph
from shared.ml.stage_one.index import LowRankFilter


def truncated_svd(m: sp.spmatrix, rank: int, seed: int) -> TruncatedSVD:
    """The top `rank` singular directions of `m` (fewer if `m` has fewer), randomized solver."""
    k = max(1, min(rank, min(m.shape) - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=7)
    svd.fit(m)
    return svd


def item_embeddings(stats: UserItemStats, n_items: int, dim: int, seed: int) -> np.ndarray:
    """L2-normalised item vectors from a truncated SVD of the user x item matrix.

    Rows are scaled by 1/sqrt(activity) so heavy users do not define the space alone; cosine between
    the resulting vectors approximates item-item co-occurrence similarity.
    """
    m = stats.matrix(n_items, "strength").astype(np.float64)
    m.data = np.log1p(m.data)
    activity = np.asarray(m.getnnz(axis=1), dtype=np.float64)
    m = m.multiply(1.0 / np.sqrt(np.maximum(activity, 1.0))[:, None]).tocsr()
    svd = truncated_svd(m, dim, seed)
    vectors: np.ndarray = (svd.components_.T * svd.singular_values_).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = vectors / np.maximum(norms, 1e-12)  # items nobody took stay all-zero
    return unit


def neighbour_graph(
    stats: UserItemStats,
    n_items: int,
    l2: float,
    top: int,
    session_minutes: float = 0.0,
    session_weight: float = 2.0,
    label_groups: Sequence[np.ndarray] = (),
    label_weight: float = 0.0,
    head: np.ndarray | None = None,
    dropout: float = 0.0,
) -> sp.csr_matrix:
    """Learned item -> item weights (EASE, Steck 2019, closed form), the `top` largest in
    magnitude per item (negative ones too).

    Cosine in a low-rank embedding space blurs what exactly co-occurs; EASE's full-rank weights
    keep it, and pruned to the strongest neighbours per item they stay a k-NN lookup table.
    With `session_minutes`, two items one user took in one session (no gap longer than that)
    count `session_weight` more than two they took months apart; l2 grows with the Gram matrix
    (x (1 + w/2)). Each of `label_groups` (items sharing a category or tag, `item_label_groups`)
    counts as `label_weight` more users who took all of its items.
    With `head` (sorted item positions, `head_items`), EASE is fitted over those items only: its
    dense fit costs items^3 time and items^2 memory, so a big catalog's most-taken items get
    EASE weights and the other items' rows come from item-kNN cosine (`with_tail`).
    `dropout` is EASE's (its penalty per item grows with the item's own count; `EASE`).
    """
    cols = np.arange(n_items) if head is None else head
    x = stats.matrix(n_items)[:, cols]
    extra = None
    if session_minutes > 0 and session_weight > 0:
        # Each session counts as one more (pseudo-)user: X^T X + w Z^T Z is the Gram matrix of
        # X with the session rows Z appended, so it stays positive definite with l2 added.
        z = sessions(stats, n_items, session_minutes * 60.0)[:, cols]
        extra = (z.T @ z).tocsr() * session_weight
        l2 *= 1.0 + session_weight / 2.0
    if head is not None and label_weight > 0:
        local = np.full(n_items, -1, dtype=np.int64)
        local[cols] = np.arange(len(cols))
        label_groups = [g for g in (local[g][local[g] >= 0] for g in label_groups) if len(g) > 1]
    ease = EASE(l2=l2, dropout=dropout)
    ease.fit(x, extra, label_groups, label_weight)
    b = ease.item_weights
    keep = min(top, len(cols) - 1)
    # The largest weights by magnitude: EASE's negative weights (items a user of this one does
    # not take) carry as much as its positive ones where users take many items; kept by value,
    # a 2,000-neighbour graph scored 14 % below the unpruned EASE on validation (docs/decisions.md).
    idx = (
        np.argpartition(-np.abs(b), keep - 1, axis=1)[:, :keep]
        if keep > 0
        else np.empty((len(cols), 0), int)
    )
    rows = np.repeat(cols, idx.shape[1])
    vals = np.take_along_axis(b, idx, axis=1).ravel()
    graph = sp.csr_matrix(
        (vals, (rows, cols[idx.ravel()])), shape=(n_items, n_items), dtype=np.float32
    )
    graph.eliminate_zeros()
    return graph


def als_fold_in(
    stats: UserItemStats,
    n_items: int,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    seed: int,
) -> FoldIn:
    """ALS fitted on the users' summed strengths: the model of the ALS baseline (`FoldIn`)."""
    als = ALS(factors, regularization, iterations, alpha, seed)
    als.fit(stats.matrix(n_items, "strength"))
    return FoldIn(als.item_factors, regularization, alpha, als.user_factors)


def head_items(stats: UserItemStats, n_items: int, limit: int) -> np.ndarray | None:
    """The `limit` items most users took (sorted positions), or None when the catalog has no
    more items than that."""
    if n_items <= limit:
        return None
    users = np.bincount(stats.indices, minlength=n_items)
    return np.sort(np.argsort(-users, kind="stable")[:limit])


def with_tail(
    graph: sp.csr_matrix, stats: UserItemStats, head: np.ndarray, neighbours: int
) -> sp.csr_matrix:
    """`graph` (EASE over the `head` items) with item-kNN cosine rows for every other item,
    scaled so that the tail's strongest weights are on the head's scale (their mean row maxima
    match): a user who took only tail items still reaches their neighbours through the graph."""
    n_items = graph.shape[0]
    tail = np.setdiff1d(np.arange(n_items), head)
    knn = ItemKNN(neighbours=max(1, neighbours)).rows(binarize(stats.matrix(n_items)), tail)
    head_max = graph[head].max(axis=1).toarray().ravel()
    tail_max = knn[tail].max(axis=1).toarray().ravel()
    head_max, tail_max = head_max[head_max > 0], tail_max[tail_max > 0]
    if len(head_max) and len(tail_max):
        knn = knn * float(head_max.mean() / tail_max.mean())
    return sp.csr_matrix(graph + knn, dtype=np.float32)


def sessions(stats: UserItemStats, n_items: int, gap: float) -> sp.csr_matrix:
    """Sessions x items, 0/1: each user's items in time order (by their last times), a new
    session wherever more than `gap` seconds pass between two of them."""
    users = np.repeat(np.arange(stats.n_users), np.diff(stats.indptr))
    ts = stats.last_ts.astype(np.float64)
    order = np.lexsort((ts, users))
    users, ts, items = users[order], ts[order], stats.indices[order]
    starts = np.ones(len(users), dtype=bool)
    starts[1:] = (users[1:] != users[:-1]) | (np.diff(ts) > gap)
    session = np.cumsum(starts) - 1
    shape = (int(starts.sum()), n_items)
    return sp.csr_matrix((np.ones(len(items)), (session, items)), shape=shape)


def lowrank_filter(
    stats: UserItemStats, graph: sp.csr_matrix, rank: int, weight: float, seed: int
) -> LowRankFilter:
    """An ideal low-pass filter (GF-CF, Shen et al. 2021) to add to the neighbour graph's scores.

    The top `rank` right singular vectors V of the binary user x item matrix normalised by
    1/sqrt(user and item degrees) give item -> item weights D^-1/2 V V^T D^1/2: what a user's
    items share with the catalog's main directions of taste, which a graph pruned to a few
    neighbours per item cannot hold. Scaled so its scores spread `weight` times as widely as the
    graph's over the users' histories (measurements: docs/decisions.md).
    """
    n_items = graph.shape[0]
    x = binarize(stats.matrix(n_items))
    item_deg = np.maximum(np.asarray(x.sum(axis=0)).ravel(), 1.0)
    user_deg = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)
    norm = sp.diags(1.0 / np.sqrt(user_deg)) @ x @ sp.diags(1.0 / np.sqrt(item_deg))
    v = truncated_svd(norm, rank, seed).components_.T  # items x rank
    left, right = v / np.sqrt(item_deg)[:, None], v.T * np.sqrt(item_deg)[None, :]
    # Spread of both scores over (a sample of) the users' rows and every item, from sums: the
    # dense scores of 2000 users x 20k items would take 320 MB.
    sample = x[np.random.default_rng(seed).permutation(x.shape[0])[:2000]]
    cells = sample.shape[0] * n_items
    dense = dense_form(graph)
    if dense is not None:
        by_graph = times_graph(sample, graph, dense)
        graph_spread = _spread(by_graph.sum(), np.square(by_graph).sum(), cells)
    else:  # a wide catalog: only the cells the graph reaches are held
        reached = (sample @ graph).tocsr()
        graph_spread = _spread(reached.sum(), np.square(reached.data).sum(), cells)
    proj = np.asarray(sample @ left)  # users x k; the scores are proj @ right
    total = proj.sum(axis=0) @ right.sum(axis=1)
    squares = np.sum((proj.T @ proj) * (right @ right.T))  # sum of squared entries of proj @ right
    lowrank_spread = _spread(total, squares, cells)
    scale = weight * graph_spread / lowrank_spread if lowrank_spread > 0 else 0.0
    return LowRankFilter((left * scale).astype(np.float32), right.astype(np.float32))


def _spread(total: float, squares: float, cells: int) -> float:
    """Standard deviation of `cells` values from their sum and their sum of squares."""
    mean = float(total) / cells
    return float(np.sqrt(max(float(squares) / cells - mean * mean, 0.0)))


PRICE_BANDS = 8


# Relative weight of each block before rows are normalised: the title says most about a product,
# its category a lot, its price band a little.
TITLE_WEIGHT, CATEGORY_WEIGHT, PRICE_WEIGHT = 1.0, 0.6, 0.3


def content_matrix(
    titles: Sequence[str | None], categories: Sequence[str | None], prices: Sequence[float | None]
) -> sp.csr_matrix:
    """(items x features) unit rows: title TF-IDF | category one-hot | log-price band one-hot.
    Items with no content at all keep an all-zero row and are similar to nothing."""
    n = len(titles)
    docs = [t or "" for t in titles]
    blocks: list[sp.csr_matrix] = []
    if any(d.strip() for d in docs):
        tfidf = TfidfVectorizer(lowercase=True, sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b")
        # ValueError: every title was single letters or digits; the other blocks still hold.
        with contextlib.suppress(ValueError):
            blocks.append(sp.csr_matrix(tfidf.fit_transform(docs)) * TITLE_WEIGHT)
    vocab = {c: i for i, c in enumerate(sorted({c for c in categories if c}))}
    rows = [i for i, c in enumerate(categories) if c]
    cols = [vocab[c] for c in categories if c]
    blocks.append(
        sp.csr_matrix(
            (np.full(len(rows), CATEGORY_WEIGHT), (rows, cols)), shape=(n, max(len(vocab), 1))
        )
    )
    known = [(i, float(p)) for i, p in enumerate(prices) if p is not None and p > 0]
    band = np.zeros(0, dtype=np.int64)
    if known:
        logp = np.log([p for _, p in known])
        edges = np.quantile(logp, np.linspace(0, 1, PRICE_BANDS + 1)[1:-1])
        band = np.searchsorted(edges, logp)
    blocks.append(
        sp.csr_matrix(
            (np.full(len(known), PRICE_WEIGHT), ([i for i, _ in known], band)),
            shape=(n, PRICE_BANDS),
        )
    )
    stacked = sp.hstack(blocks, format="csr", dtype=np.float32)
    return sp.csr_matrix(normalize(stacked, norm="l2", axis=1))
