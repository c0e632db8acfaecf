"""ALS as stage one's scorer: implicit-feedback matrix factorization (Hu, Koren & Volinsky 2008),
a user scored by the inner product of their vector with every item's.

Where ALS beats the neighbour graph on validation, stage one becomes it and the ranker corrects
it as it corrects EASE. The artifact keeps the item factors and the fitted users' vectors: a
user the model was trained on, with nothing new since, is scored exactly as the ALS baseline
scores them. A user with events since training, or one the model never saw, gets a vector
solved from what they took (fold-in: one rank x rank system per request, the solve ALS itself
makes for each user with the items held fixed), so a new event moves the next answer as it does
the graph's. Storing the fitted vectors matters: the alternation stops before it converges and
validation scores its last users' vectors higher than one more solve against the last items'
(0.188 vs 0.176 NDCG@10 on the synthetic data's first validation split; docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shared.ml import sorted_sets
from shared.ml.baselines import compressed
from shared.ml.stage_one.longest_first import LongestFirst, is_wide


@dataclass(frozen=True)
class FoldIn:
    """Item factors (items x rank) and the ALS solve's regularization and confidence scale:
    an item a user took with summed strength s weighs 1 + alpha * log(1 + s) (as the ALS
    baseline fits; 1 + alpha * s where `log_strengths` is off: versions trained before it),
    every other item 1."""

    factors: np.ndarray
    regularization: float
    alpha: float
    users: np.ndarray  # the fitted users' vectors (users x rank), by the catalog's positions
    log_strengths: bool = True
    # Y^T Y + regularization * I, the part of every user's system that does not depend on them
    base: np.ndarray = field(init=False, repr=False, compare=False)
    # the item factors longest first, for `top` on a wide catalog: built on first use
    _by_length: LongestFirst | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.factors.ndim != 2:
            raise ValueError(f"ALS item factors must be items x rank, got {self.factors.shape}")
        y = self.factors.astype(np.float64)
        rank = y.shape[1]
        if self.users.ndim != 2 or self.users.shape[1] != rank:
            raise ValueError(f"ALS user factors {self.users.shape}, item factors {y.shape}")
        object.__setattr__(self, "base", y.T @ y + self.regularization * np.eye(rank))

    @property
    def n_items(self) -> int:
        return int(self.factors.shape[0])

    @property
    def scans(self) -> bool:
        """Whether a request finds its best items by `top` (a wide catalog), not by `scores`."""
        return is_wide(self.n_items)

    def at(self, vector: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The scores (float64) of `items` alone for a user `vector`."""
        out: np.ndarray = (self.factors[items] @ vector).astype(np.float64)
        return out

    def top(
        self, vector: np.ndarray, k: int, skip: np.ndarray, allowed: np.ndarray | None
    ) -> np.ndarray:
        """Items (outside `skip`, in any order; inside `allowed`) whose score is among the k
        best of such items, whatever their sign, ties included (`LongestFirst.top`)."""
        return self._longest_first().top(vector, k, skip, allowed)

    def prepare(self) -> None:
        """Sort the factors for `top` now (a wide catalog), not in the first request."""
        if self.scans:
            self._longest_first()

    def _longest_first(self) -> LongestFirst:
        if self._by_length is None:
            object.__setattr__(self, "_by_length", LongestFirst(self.factors))
        assert self._by_length is not None
        return self._by_length

    def user_vector(self, items: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        """The user's factors from the `items` they took with `strengths` (repeats add up):
        (Y^T C Y + lambda I) x = Y^T C p, C = 1 + alpha * s on their items, p = 1 there (s
        compressed as the fit's, `log_strengths`)."""
        if not len(items):
            return np.zeros(self.factors.shape[1])
        # a negative weight (an event type configured so) counts as not taken: the system
        # stays positive definite
        taken = np.maximum(np.asarray(strengths, dtype=np.float64), 0.0)
        # the fit weighs each pair's summed strength, so repeats add up before the compression
        items, summed = sorted_sets.sums(np.asarray(items), taken)
        y = self.factors[items].astype(np.float64)
        extra = self.alpha * (compressed(summed) if self.log_strengths else summed)
        system = self.base + (y.T * extra) @ y
        return np.linalg.solve(system, y.T @ (1.0 + extra))

    def vector(self, user: int, items: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        """The fitted vector of `user` (a position; -1 for none), or the one solved from
        `items` and `strengths` when there is none (or the caller has newer events: -1)."""
        if 0 <= user < len(self.users):
            fitted: np.ndarray = self.users[user]
            return fitted
        return self.user_vector(items, strengths).astype(np.float32)

    def scores(self, user: int, items: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        """Every item's score (float64) for `user` (see `vector`)."""
        out: np.ndarray = (self.factors @ self.vector(user, items, strengths)).astype(np.float64)
        return out

    def batch_scores(self, users: np.ndarray, rows: sp.csr_matrix) -> np.ndarray:
        """Scores (users x items) for `users` (the trainer's lists), `rows` their strengths."""
        rows = sp.csr_matrix(rows)
        vectors = np.zeros((rows.shape[0], self.factors.shape[1]), dtype=np.float32)
        for r, user in enumerate(np.asarray(users).tolist()):
            lo, hi = rows.indptr[r], rows.indptr[r + 1]
            vectors[r] = self.vector(user, rows.indices[lo:hi], rows.data[lo:hi])
        out: np.ndarray = (vectors @ self.factors.T).astype(np.float64)
        return out
