"""Reference recommenders scored on the same user x item matrix as the two-stage model.

Every model maps a training matrix (users x items, values = interaction strength > 0) to
per-user scores over the full catalog; `shared.ml.top_lists` turns scores into ranked item
positions with each user's excluded items masked out, so exclusion and -1 padding behave
identically for all of them: dense rows through `top_k`, item-kNN's sparse rows and ALS's factors
through their own forms of it (popularity, one order for everyone, walks that order instead; the
tests hold each to the same lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from shared.ml import dense_reuse
from shared.ml.ease_inverse import PenalisedGram, ease_weights
from shared.ml.memory import require_dense
from shared.ml.top_lists import (
    BLOCK_SCORES,
    factor_top_k,
    sparse_top_k,
    top_k,
    users_per_block,
)


class Recommender(Protocol):
    name: str

    def fit(self, train: sp.csr_matrix) -> None:
        """Learn from `train`: users x items, values = interaction strength (> 0)."""
        ...

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        """(len(users), k) item positions, best first; never an item with exclude[u, i] != 0.

        Rows are padded with -1 only when fewer than k items remain after exclusion.
        """
        ...


def binarize(train: sp.csr_matrix) -> sp.csr_matrix:
    """1.0 where a user interacted with an item; stored zeros and duplicates folded away."""
    x = sp.csr_matrix(train, dtype=np.float64, copy=True)
    x.sum_duplicates()
    x.eliminate_zeros()
    x.data[:] = 1.0
    return x


def compressed(strengths: np.ndarray) -> np.ndarray:
    """What ALS weighs a pair's summed strength by: log(1 + s) (Hu, Koren & Volinsky 2008's
    log-scaled confidence), the sign kept. Raw counts let a few pairs taken thousands of times
    (play counts, bulk orders) outweigh everything else a user took (docs/decisions.md)."""
    s = np.asarray(strengths, dtype=np.float64)
    out: np.ndarray = np.sign(s) * np.log1p(np.abs(s))
    return out


class _ScoreRecommender:
    """Shared `recommend`: score users block by block and mask with `top_k` (`_top`, which a
    model with a cheaper form of the same lists overrides)."""

    name = "base"
    _n_items: int | None = None

    def _scores(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _top(self, users: np.ndarray, k: int, exclude_rows: sp.csr_matrix) -> np.ndarray:
        return top_k(self._scores(users), k, exclude_rows)

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self._n_items is None:
            raise RuntimeError(f"{self.name}: call fit() before recommend()")
        users = np.asarray(users, dtype=np.int64)
        exclude = sp.csr_matrix(exclude)
        if exclude.shape[1] != self._n_items:
            raise ValueError(f"exclude has {exclude.shape[1]} items, model has {self._n_items}")
        out = np.full((len(users), k), -1, dtype=np.int64)
        step = users_per_block(self._n_items)
        for start in range(0, len(users), step):
            batch = users[start : start + step]
            out[start : start + len(batch)] = self._top(batch, k, exclude[batch])
        return out


class Popularity(_ScoreRecommender):
    """Same list for everyone: items by number of distinct users, minus what each user has."""

    name = "popularity"

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.float32)

    def fit(self, train: sp.csr_matrix) -> None:
        self.counts = np.asarray(binarize(train).sum(axis=0), dtype=np.float32).ravel()
        self._n_items = len(self.counts)

    def _scores(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))

    def recommend(self, users: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        """One order for everyone (ties to the lower position), each user's excluded items
        skipped: k allowed items lie within the first k + (their exclusions) of it, where
        scoring every user over the catalog (`top_k`) costs minutes on a wide one."""
        if self._n_items is None:
            raise RuntimeError(f"{self.name}: call fit() before recommend()")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        users = np.asarray(users, dtype=np.int64)
        exclude = sp.csr_matrix(exclude)
        if exclude.shape[1] != self._n_items:
            raise ValueError(f"exclude has {exclude.shape[1]} items, model has {self._n_items}")
        order = np.argsort(-self.counts, kind="stable")
        rows = exclude[users]
        rows.eliminate_zeros()
        # the head that holds k allowed items for every one of them (at most the catalog, as
        # `top_k`'s blocks: never slower than scoring every item)
        head = order[: min(k + int(np.diff(rows.indptr).max(initial=0)), self._n_items)]
        out = np.full((len(users), k), -1, dtype=np.int64)
        step = max(1, BLOCK_SCORES // max(len(head), 1))
        for start in range(0, len(users), step):
            taken = rows[start : start + step][:, head].toarray() != 0
            # the first k allowed items of the head, in its order (False sorts first)
            pick = np.argsort(taken, axis=1, kind="stable")[:, :k]
            items = head[pick]
            items[np.take_along_axis(taken, pick, axis=1)] = -1
            out[start : start + len(items), : items.shape[1]] = items
        return out


class ItemKNN(_ScoreRecommender):
    """Item-item cosine on the binarized matrix, pruned to each item's top `neighbours`.

    sim(i, j) = |U_i & U_j| / (sqrt(|U_i|) * sqrt(|U_j|) + shrink); shrink damps similarities
    supported by few users. Row j of `similarity` holds j's neighbours, so a user's score is the sum
    of similarities from the items they have (binary row @ similarity).
    """

    name = "item_knn"
    # Rows computed at once during fit, and item pairs at most (~40 bytes each while sorted).
    _FIT_BLOCK = 1024
    _BLOCK_PAIRS = 20_000_000

    def __init__(self, neighbours: int = 100, shrink: float = 0.0) -> None:
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        self.neighbours = neighbours
        self.shrink = shrink
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self._x = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, train: sp.csr_matrix) -> None:
        x = binarize(train)
        n_items = x.shape[1]
        self.similarity = self.rows(x, np.arange(n_items))
        self._x = x.astype(np.float32)
        self._n_items = n_items

    def _scores(self, users: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (self._x[users] @ self.similarity).toarray()
        return scores

    def _top(self, users: np.ndarray, k: int, exclude_rows: sp.csr_matrix) -> np.ndarray:
        # a user's row is zero outside the neighbours of what they have
        return sparse_top_k(self._x[users] @ self.similarity, k, exclude_rows)

    def rows(self, x: sp.csr_matrix, items: np.ndarray) -> sp.csr_matrix:
        """The similarity rows of `items` only (the others empty), from the binary matrix `x`,
        a block of rows at a time, so no items x items matrix is ever made.

        Each row keeps its `neighbours` largest positive similarities, on a tie the lower item
        position. A block is computed densely (a row as wide as the catalog) or from the pairs
        some user took together, whichever is fewer numbers: the same rows either way, but a
        dense row per item costs minutes and gigabytes at a million items, and listing pairs
        costs more than the whole row on small catalogs with long histories."""
        n_items = x.shape[1]
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        xt = x.T.tocsr()
        keep = min(self.neighbours, max(n_items - 1, 1))
        # an item's pairs are at most the sum of its users' history lengths
        bound = xt @ np.diff(x.indptr).astype(np.float64)
        empty = [np.zeros(0, dtype=np.int64)]
        rows, cols, vals = list(empty), list(empty), [np.zeros(0, dtype=np.float64)]
        start = 0
        while start < len(items):
            pairs = np.cumsum(bound[items[start : start + self._FIT_BLOCK]])
            size = max(1, int(np.searchsorted(pairs, self._BLOCK_PAIRS, side="right")))
            block = items[start : start + size]
            start += size
            co = xt[block] @ x
            if co.nnz * 4 < len(block) * n_items:
                r, c, sim = self._sparse_top(co, block, norms, keep)
            else:
                r, c, sim = self._dense_top(co.toarray(), block, norms, keep)
            rows.append(block[r])
            cols.append(c)
            vals.append(sim)
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
            dtype=np.float32,
        )

    def _sparse_top(
        self, co: sp.csr_matrix, block: np.ndarray, norms: np.ndarray, keep: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row in block, item, similarity) of each row's best `keep`, from the co-counts' pairs."""
        co.sort_indices()  # columns ascending within a row: the tie order below
        coo = co.tocoo()
        r, c = coo.row.astype(np.int64), coo.col.astype(np.int64)
        # co > 0: both items have users, the denominator is positive
        sim = coo.data / (norms[block][r] * norms[c] + self.shrink)
        # An item is not its own neighbour; it would waste one of the `neighbours` slots.
        ok = (c != block[r]) & (sim > 0)
        r, c, sim = r[ok], c[ok], sim[ok]
        order = np.lexsort((c, -sim, r))
        r, c, sim = r[order], c[order], sim[order]
        top = np.arange(len(r)) - np.searchsorted(r, r) < keep  # place within its row
        return r[top], c[top], sim[top]

    def _dense_top(
        self, co: np.ndarray, block: np.ndarray, norms: np.ndarray, keep: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_sparse_top` from the block's dense co-count rows."""
        denom = norms[block, None] * norms[None, :] + self.shrink
        sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
        sim[np.arange(len(block)), block] = 0.0
        # the keep-th largest of each row; what beats it stays, then its ties by position
        kth = -np.partition(-sim, keep - 1, axis=1)[:, keep - 1 : keep]
        above = sim > kth
        tied = sim == kth
        room = keep - above.sum(axis=1, keepdims=True)
        chosen = (above | (tied & (np.cumsum(tied, axis=1) <= room))) & (sim > 0)
        r, c = np.nonzero(chosen)
        return r, c, sim[r, c]


# Past this many items a dense items x items fit (EASE) is refused whatever memory is free: its
# cubic-time inverse would take many minutes on a small machine (and its memory grows squared).
DENSE_MAX_ITEMS = 20_000


class EASE(_ScoreRecommender):
    """Steck (2019) embarrassingly shallow autoencoder, closed form.

    P = (X^T X + l2 I)^-1 and B = I - P / diag(P) (column j divided by P_jj), i.e. B_ij = -P_ij/P_jj
    off the diagonal and 0 on it. Scores are X_u @ B.

    With `dropout` p > 0, each item's own penalty grows with how often it was taken: l2 + p/(1-p)
    x its Gram diagonal (Steck 2020, "Autoencoders that don't overfit towards the identity",
    EDLAE: the closed form of training with input dropout p). Popular items then explain each
    other less by sheer co-occurrence.
    """

    name = "ease"

    # Its fit holds about four float64 items x items matrices at once (Gram, inverse, weights).
    DENSE_COPIES = 4.0

    def __init__(
        self, l2: float = 500.0, max_items: int | None = DENSE_MAX_ITEMS, dropout: float = 0.0
    ) -> None:
        if l2 <= 0:
            raise ValueError(f"l2 must be > 0, got {l2}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.l2 = l2
        self.dropout = dropout
        self.max_items = max_items
        self.item_weights = np.zeros((0, 0), dtype=np.float32)
        self._x = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(
        self,
        train: sp.csr_matrix,
        extra_gram: sp.csr_matrix | None = None,
        groups: Sequence[np.ndarray] = (),
        group_weight: float = 0.0,
    ) -> None:
        """`extra_gram`: item x item counts added to X^T X (e.g. pairs taken in one session);
        sparse, added cell by cell, so that no second dense items x items matrix is made.
        `groups`: arrays of distinct item positions (e.g. the items of one category), each
        counting as `group_weight` more users who took all of its items."""
        require_dense("EASE", train.shape[1], self.DENSE_COPIES, self.max_items)
        x = binarize(train)
        problem = PenalisedGram.of(x.T @ x, extra_gram, groups, group_weight, self.l2, self.dropout)
        key = dense_reuse.fit_key(problem)
        weights = dense_reuse.kept(key)  # an identical fit earlier in this scope
        if weights is None:
            weights = ease_weights(problem)
            dense_reuse.keep(key, weights)
        self.item_weights = weights
        self._x = x.astype(np.float32)
        self._n_items = x.shape[1]

    def _scores(self, users: np.ndarray) -> np.ndarray:
        scores: np.ndarray = self._x[users] @ self.item_weights
        return scores


class ALS(_ScoreRecommender):
    """Implicit-feedback matrix factorization (Hu, Koren & Volinsky 2008) via `implicit`, on CPU.

    Confidence is c_ui = 1 + alpha * log(1 + r_ui) for observed pairs (`compressed`; unobserved
    pairs weigh 1), passed to implicit as the matrix values with its own alpha left at 1:
    implicit would otherwise use alpha * r_ui, which falls below the unobserved weight of 1 for
    small strengths.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 10.0,
        seed: int = 42,
        num_threads: int = 2,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")  # 0 = all cores
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.seed = seed
        self.num_threads = num_threads
        self.user_factors = np.zeros((0, 0), dtype=np.float32)
        self.item_factors = np.zeros((0, 0), dtype=np.float32)
        self._finite = True

    def fit(self, train: sp.csr_matrix) -> None:
        # implicit.cpu never picks a GPU, unlike implicit.als.AlternatingLeastSquares.
        from implicit.cpu.als import AlternatingLeastSquares

        conf = sp.csr_matrix(train, dtype=np.float32, copy=True)
        conf.sum_duplicates()
        conf.eliminate_zeros()
        conf.data = (1.0 + self.alpha * compressed(conf.data)).astype(np.float32)
        # implicit parallelizes over users itself; a multi-threaded BLAS inside each solve only
        # oversubscribes the cores. It checks (and warns) in the constructor, so both go inside.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                num_threads=self.num_threads,
                random_state=self.seed,
            )
            model.fit(conf, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        factors = (self.user_factors, self.item_factors)
        self._finite = all(bool(np.isfinite(f).all()) for f in factors)
        self._n_items = conf.shape[1]

    def _scores(self, users: np.ndarray) -> np.ndarray:
        scores: np.ndarray = self.user_factors[users] @ self.item_factors.T
        return scores

    def _top(self, users: np.ndarray, k: int, exclude_rows: sp.csr_matrix) -> np.ndarray:
        if not self._finite:  # implicit's selection has no rule for NaN; `top_k` has
            return top_k(self._scores(users), k, exclude_rows)
        uf = self.user_factors[users]
        return factor_top_k(uf, self.item_factors, k, exclude_rows, self.num_threads)
