"""Stage one: item embeddings, a k-NN index over them, candidates seeded by recent items."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from shared.ml.baselines import EASE, binarize
from shared.ml.interactions import DAY, UserItemStats, sparse_arrays, sparse_from
from shared.ml.vector_index import AnnParams, ExactIndex, VectorIndex, build_vector_index

SEED_HALF_LIFE_DAYS = 30.0
# Catalogs up to TABLE_MAX_ITEMS keep each item's TABLE_WIDTH nearest neighbours in a table
# (20k items: 20 MB); bigger ones search per request (exact or HNSW).
TABLE_MAX_ITEMS = 20_000
TABLE_WIDTH = 128


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


class CandidateIndex:
    """Cosine k-NN over item embeddings; popularity serves cold users and top-ups.

    Vectors are unit length; `similar` searches them through a `VectorIndex`: exact (one matrix
    product and a partial sort) unless `use_backend` installs HNSW for a big catalog.
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        popularity: np.ndarray,
        graph: sp.csr_matrix | None = None,
        lowrank: LowRankFilter | None = None,
    ) -> None:
        self.embeddings = embeddings.astype(np.float32)
        self.popularity = popularity.astype(np.float32)
        # Optional learned item -> item neighbour weights (top-M per item): see `neighbour_graph`.
        self.graph = graph
        # Optional dense low-rank item -> item weights added to the graph's: see `lowrank_filter`.
        self.lowrank = lowrank if graph is not None else None
        n = len(self.embeddings)
        sizes = {
            "graph": n if graph is None else graph.shape[0],
            "low-rank filter": n if self.lowrank is None else self.lowrank.left.shape[0],
        }
        for name, size in sizes.items():
            if size != n:  # refused when a version loads, not when a request meets it
                raise ValueError(f"the {name} covers {size} items, the catalog {n}")
        self._popular_order = np.argsort(-self.popularity, kind="stable")
        self.vectors: VectorIndex = ExactIndex(self.embeddings)
        self._table: tuple[np.ndarray, np.ndarray] | None = None

    def use_backend(self, params: AnnParams | None) -> None:
        """Search through the backend `params` choose (exact below `params.min_items` items).

        Called once at model load, before the index serves. An HNSW graph is built here from the
        embeddings, never stored: the artifact stays the plain embeddings (one format, checked by
        sha256, readable without hnswlib), at the cost of the build time in docs/benchmarks.md.
        """
        self.vectors = build_vector_index(self.embeddings, params)
        self._table = None
        if self._table_fits():
            self.neighbour_table()  # now, not in the first request

    @property
    def n_items(self) -> int:
        return len(self.embeddings)

    def similar(self, seeds: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour positions, cosine similarities), each (len(seeds), min(n, n_items))."""
        if n <= TABLE_WIDTH and self._table_fits():
            ids, sims = self.neighbour_table()
            return ids[seeds, :n], sims[seeds, :n]
        return self.vectors.search(self.embeddings[seeds], n)

    def _table_fits(self) -> bool:
        return isinstance(self.vectors, ExactIndex) and self.n_items <= TABLE_MAX_ITEMS

    def neighbour_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's TABLE_WIDTH nearest items, computed once: seeds are catalog items, so a
        request (or each of the trainer's thousands of lists) looks its seeds up instead of
        multiplying them against the whole catalog again."""
        if self._table is None:
            parts = [
                self.vectors.search(self.embeddings[i : i + 2048], TABLE_WIDTH)
                for i in range(0, self.n_items, 2048)
            ]
            self._table = (
                np.vstack([ids for ids, _ in parts]),
                np.vstack([sims for _, sims in parts]),
            )
        return self._table

    def popular(self, n: int, exclude: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
        """The n most popular items outside `exclude` (and inside the `allowed` mask, if any)."""
        order: np.ndarray = self._popular_order
        mask = ~_members(exclude, self.n_items)[order]
        if allowed is not None:
            mask &= allowed[order]
        picked: np.ndarray = order[mask][:n]
        return picked

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        g = self.graph if self.graph is not None else sp.csr_matrix((0, 0), dtype=np.float32)
        graph = sparse_arrays(g, "graph_")
        lowrank: dict[str, Any] = {}
        if self.lowrank is not None:
            lowrank = {"lowrank_left": self.lowrank.left, "lowrank_right": self.lowrank.right}
        np.savez(buf, embeddings=self.embeddings, popularity=self.popularity, **graph, **lowrank)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CandidateIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            graph = sparse_from(npz, "graph_")
            lowrank = None
            if "lowrank_left" in npz.files:
                lowrank = LowRankFilter(npz["lowrank_left"], npz["lowrank_right"])
            return cls(
                npz["embeddings"], npz["popularity"], graph if graph.shape[0] else None, lowrank
            )


def neighbour_graph(
    stats: UserItemStats,
    n_items: int,
    l2: float,
    top: int,
    session_minutes: float = 0.0,
    session_weight: float = 2.0,
    label_groups: Sequence[np.ndarray] = (),
    label_weight: float = 0.0,
) -> sp.csr_matrix:
    """Learned item -> item weights (EASE, Steck 2019, closed form), top `top` per item.

    Cosine in a low-rank embedding space blurs what exactly co-occurs; EASE's full-rank weights
    keep it, and pruned to the strongest neighbours per item they stay a k-NN lookup table.
    With `session_minutes`, two items one user took in one session (no gap longer than that)
    count `session_weight` more than two they took months apart; l2 grows with the Gram matrix
    (x (1 + w/2)). Each of `label_groups` (items sharing a category or tag, `item_label_groups`)
    counts as `label_weight` more users who took all of its items.
    """
    extra = None
    if session_minutes > 0 and session_weight > 0:
        # Each session counts as one more (pseudo-)user: X^T X + w Z^T Z is the Gram matrix of
        # X with the session rows Z appended, so it stays positive definite with l2 added.
        z = sessions(stats, n_items, session_minutes * 60.0)
        extra = (z.T @ z).tocsr() * session_weight
        l2 *= 1.0 + session_weight / 2.0
    ease = EASE(l2=l2)
    ease.fit(stats.matrix(n_items), extra, label_groups, label_weight)
    b = ease.item_weights
    keep = min(top, n_items - 1)
    idx = (
        np.argpartition(-b, keep - 1, axis=1)[:, :keep] if keep > 0 else np.empty((n_items, 0), int)
    )
    rows = np.repeat(np.arange(n_items), idx.shape[1])
    vals = np.take_along_axis(b, idx, axis=1).ravel()
    graph = sp.csr_matrix((vals, (rows, idx.ravel())), shape=(n_items, n_items), dtype=np.float32)
    graph.eliminate_zeros()
    return graph


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


@dataclass(frozen=True)
class LowRankFilter:
    """Item -> item weights left @ right (items x rank, rank x items), kept as the two factors:
    a user's score is (their items' rows of left, summed) @ right, rank x items per request."""

    left: np.ndarray
    right: np.ndarray

    def __post_init__(self) -> None:
        n, rank = self.left.shape
        if self.right.shape != (rank, n):
            raise ValueError(f"low-rank factors {self.left.shape} and {self.right.shape} differ")

    def scores(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        # float32 like the factors: a float64 copy of `right` would cost more than the product
        summed = np.asarray(weights, dtype=np.float32) @ self.left[items]
        out: np.ndarray = (summed @ self.right).astype(np.float64)
        return out


def lowrank_filter(
    stats: UserItemStats, graph: sp.csr_matrix, rank: int, weight: float, seed: int
) -> LowRankFilter:
    """An ideal low-pass filter (GF-CF, Shen et al. 2021) to add to the neighbour graph's scores.

    The top `rank` right singular vectors V of the binary user x item matrix normalised by
    1/sqrt(user and item degrees) give item -> item weights D^-1/2 V V^T D^1/2: what a user's
    items share with the catalog's main directions of taste, which a graph pruned to a few
    neighbours per item cannot hold. Scaled so its scores spread `weight` times as widely as the
    graph's over the users' histories (MovieLens validation: docs/benchmarks.md).
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
    by_graph = (sample @ graph).tocsr()
    graph_spread = _spread(by_graph.sum(), np.square(by_graph.data).sum(), cells)
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


@dataclass(frozen=True)
class Candidates:
    items: np.ndarray  # item positions, best first
    scores: np.ndarray  # stage-one score: neighbour-graph score where a graph exists
    similarity: np.ndarray  # embedding k-NN score of the recent seeds
    seeds: np.ndarray  # the seed item that contributed most, -1 for popularity top-ups


# Serving-path helpers on a CSR matrix's own arrays: scipy's fancy row indexing builds
# intermediate matrices on every call, which was a third of the candidate stage's time.
def _members(items: np.ndarray, n: int) -> np.ndarray:
    """A boolean mask over n items, True at `items` (np.isin sorts: many times slower here)."""
    mask = np.zeros(n, dtype=bool)
    mask[items] = True
    return mask


def _row_entries(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in m.data, column, index into `rows`) of every stored entry of `rows`."""
    starts = m.indptr[rows]
    lengths = m.indptr[rows + 1] - starts
    shift = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    pos = shift + np.arange(len(shift), dtype=shift.dtype)
    return pos, m.indices[pos], np.repeat(np.arange(len(rows)), lengths)


def _rows_dot(
    m: sp.csr_matrix, entries: tuple[np.ndarray, np.ndarray, np.ndarray], weights: np.ndarray
) -> np.ndarray:
    """sum over r of weights[r] * m[rows[r]], dense (float64), from `_row_entries(m, rows)`."""
    pos, cols, which = entries
    w = np.asarray(weights, dtype=np.float64)[which]
    dot = np.bincount(cols, weights=m.data[pos] * w, minlength=m.shape[1])
    return dot.astype(np.float64, copy=False)  # bincount of no entries is int64 even so


def _strongest(
    best: np.ndarray, items: np.ndarray, values: np.ndarray, rows: np.ndarray, seeds: np.ndarray
) -> None:
    """best[item] = seeds[row] of the item's largest value (the lowest row on a tie)."""
    if not len(items):
        return
    top = np.full(len(best), -np.inf)
    np.maximum.at(top, items, values)
    win = values == top[items]
    low = np.full(len(best), len(rows))
    np.minimum.at(low, items[win], rows[win])
    has = low < len(rows)
    best[has] = seeds[low[has]]


def _best_first(items: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """The k of `items` with the largest `values`, best first, ties in `items`' order: the
    first k of a stable sort by -values, without sorting the thousands a long history reaches
    (a partition finds the k-th value; only what ties or beats it is sorted)."""
    if k <= 0:
        return items[:0]
    if k < len(items):
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = np.flatnonzero(values >= kth)  # in items' order, every tie at the cut included
        items, values = items[keep], values[keep]
    picked: np.ndarray = items[np.argsort(-values, kind="stable")][:k]
    return picked


def generate_candidates(
    index: CandidateIndex,
    history: UserItemStats,
    user: int,
    as_of: float,
    n: int,
    n_seeds: int = 20,
    per_seed: int = 100,
    live_items: np.ndarray | None = None,
    live_weights: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    exclude_history: bool = True,
    live_exclude: np.ndarray | None = None,
) -> Candidates:
    """Neighbours of the user's items, merged; items the user already has are excluded.

    Embedding k-NN over the most recent seeds (weighted by strength and recency) always proposes;
    with a neighbour graph, the graph's score over the whole history ranks and proposes too (three
    quarters of the list); popular items top the list up to `n`. `live_items` are what the user
    did since the model was trained (events): the newest seeds, weighted by event type.
    `allowed` (a boolean mask over items) keeps only items that pass the request's filters.
    What the user already has is never proposed again unless the shop allows repeats: the trained
    history is excluded with `exclude_history`, each live event where `live_exclude` says so.
    """
    if user >= 0:
        sl = history.row(user)
        seen = history.indices[sl]
        last = history.last_ts[sl]
        order = np.argsort(-last, kind="stable")[:n_seeds]
        seeds = seen[order]
        weights = np.log1p(history.strength[sl][order]) * 0.5 ** (
            (as_of - last[order]) / DAY / SEED_HALF_LIFE_DAYS
        )
    else:
        seen = seeds = np.empty(0, dtype=np.int64)
        weights = np.empty(0, dtype=np.float64)
    graph_seeds, graph_weights = seen, np.ones(len(seen))
    excluded = seen if exclude_history else np.empty(0, dtype=np.int64)
    if live_items is not None and live_weights is not None and len(live_items):
        seeds = np.concatenate([live_items, seeds])
        weights = np.concatenate([live_weights, weights])
        graph_seeds = np.concatenate([seen, live_items])
        graph_weights = np.concatenate([graph_weights, live_weights])
        seen = np.union1d(seen, live_items)
        gone = live_items if live_exclude is None else live_items[live_exclude]
        excluded = np.union1d(excluded, gone)
    scores: np.ndarray = np.zeros(index.n_items, dtype=np.float64)
    best = np.full(index.n_items, -1, dtype=np.int64)
    if len(seeds):
        nbr, sim = index.similar(seeds, per_seed + 1)
        # A seed never recommends itself; it comes back only through other seeds, if allowed.
        contrib = np.where(nbr == seeds[:, None], 0.0, np.maximum(sim, 0.0)) * weights[:, None]
        # bincount sums in the same order np.add.at would, at a fraction of its cost
        scores = np.bincount(nbr.ravel(), weights=contrib.ravel(), minlength=index.n_items)
        # strongest seed per item (the earliest seed on a tie), for the `similar_to:` reason
        rows = np.repeat(np.arange(len(seeds)), nbr.shape[1])
        items, values = nbr.ravel(), contrib.ravel()
        hit = values > 0
        _strongest(best, items[hit], values[hit], rows[hit], seeds)
    scores[excluded] = 0.0
    if allowed is not None:
        scores[~allowed] = 0.0
    primary = scores
    taken = np.empty(0, dtype=np.int64)
    entries = None
    if index.graph is not None and len(seen):
        # the graph rows of the user's items, found once: they score and, below, explain
        entries = _row_entries(index.graph, graph_seeds)
        primary = _rows_dot(index.graph, entries, graph_weights)
        if index.lowrank is not None:
            primary += index.lowrank.scores(graph_seeds, graph_weights)
        primary[excluded] = 0.0
        if allowed is not None:
            primary[~allowed] = 0.0
        by_graph = np.flatnonzero(primary > 0)
        taken = _best_first(by_graph, primary[by_graph], (3 * n) // 4)
    by_knn = np.flatnonzero(scores > 0)
    by_knn = by_knn[~_members(taken, index.n_items)[by_knn]]
    by_knn = _best_first(by_knn, scores[by_knn], n - len(taken))
    reached = np.concatenate([taken, by_knn])
    reached = reached[np.argsort(-primary[reached], kind="stable")]
    if entries is not None and index.graph is not None and len(taken):
        # items proposed by the graph alone: the history item with the strongest weight explains
        lone = taken[best[taken] < 0]
        if len(lone):
            pos, cols, which = entries
            keep = _members(lone, index.n_items)[cols]
            _strongest(best, cols[keep], index.graph.data[pos[keep]], which[keep], graph_seeds)
    fill = index.popular(n - len(reached), np.concatenate([excluded, reached]), allowed)
    items = np.concatenate([reached, fill]).astype(np.int64)
    return Candidates(
        items=items,
        scores=primary[items].astype(np.float32),
        similarity=scores[items].astype(np.float32),
        seeds=best[items],
    )
