"""EASE's closed form: item weights from the inverse of the penalised Gram matrix.

P = (G + penalty)^-1, B = -P / diag(P) by column, 0 on the diagonal (`shared/ml/baselines.py`).
The inverse is the fit's whole cost (cubic in the catalog). From SINGLE_MIN_ITEMS items it is
computed in float32 (LAPACK spotrf/spotri: about half the time and memory of float64), then
checked in float64 on a few of its columns against the Gram matrix it inverts; where the error
estimate is above SINGLE_TOLERANCE (an ill-conditioned matrix: a small penalty on dense data),
the inverse is computed again in float64. Below SINGLE_MIN_ITEMS the float64 inverse is cheap
(docs/decisions.md), and every fit there stays exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

log = logging.getLogger(__name__)

SINGLE_MIN_ITEMS = 2_000
# Largest relative error of a checked column of P accepted from the float32 inverse: far below
# the gaps between the scores that order a top-k list.
SINGLE_TOLERANCE = 1e-3
CHECKED_COLUMNS = 16
GROUP_BLOCK = 256  # rows of a group's block added at once: a big category costs 256 x its size
MIRROR_BLOCK = 512  # rows of the inverse's lower triangle filled at once from the upper
ROW_BLOCK = 1024  # Gram rows widened to float64 at once by the check


def add_groups(gram: np.ndarray, groups: Sequence[np.ndarray], weight: float) -> None:
    """gram += weight x (the group rows' Gram matrix), in place and a block of rows at a time, so
    that a category holding most of a 20k-item catalog needs no second items x items matrix."""
    for members in groups:
        for start in range(0, len(members), GROUP_BLOCK):
            gram[np.ix_(members[start : start + GROUP_BLOCK], members)] += weight


@dataclass(frozen=True)
class PenalisedGram:
    """The matrix EASE inverts, kept sparse until it is needed dense: the Gram matrix, extra
    pairs (e.g. taken in one session), groups (each counting as `group_weight` more users who
    took all of its items), and each item's penalty (l2 and, with dropout, its own count)."""

    gram: sp.csr_matrix
    extra: sp.csr_matrix | None  # one entry per cell (`of` sums duplicates)
    groups: Sequence[np.ndarray]
    group_weight: float
    l2: float
    dropout: float

    @classmethod
    def of(
        cls,
        gram: sp.spmatrix,
        extra_gram: sp.spmatrix | None,
        groups: Sequence[np.ndarray],
        group_weight: float,
        l2: float,
        dropout: float,
    ) -> PenalisedGram:
        extra = None
        if extra_gram is not None:
            extra = sp.csr_matrix(extra_gram, dtype=np.float64, copy=True)
            # one entry per cell: the dense sum's fancy-indexed += adds each once, and equal
            # pairs hash alike (`dense_reuse.fit_key`)
            extra.sum_duplicates()
        return cls(sp.csr_matrix(gram), extra, groups, group_weight, l2, dropout)

    @property
    def n_items(self) -> int:
        return int(self.gram.shape[0])

    def dense(self, dtype: type[np.floating]) -> np.ndarray:
        gram: np.ndarray = self.gram.astype(dtype).toarray()
        if self.extra is not None:
            cells = self.extra.tocoo()
            gram[cells.row, cells.col] += cells.data.astype(dtype)
        if self.group_weight > 0:
            add_groups(gram, self.groups, self.group_weight)
        diagonal = np.diag_indices_from(gram)
        gram[diagonal] += self.l2 + self.dropout / (1.0 - self.dropout) * gram[diagonal]
        return gram


def _inverse(gram: np.ndarray) -> np.ndarray:
    """The symmetric positive definite `gram`'s inverse, in its dtype, overwriting it: a
    Cholesky-based inverse costs about half of an LU one."""
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    # Its transpose is the same matrix in Fortran order: LAPACK works on it in place (a C-order
    # array would be copied first, one more items x items matrix).
    chol, info = potrf(gram.T, lower=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorization failed (info={info})")
    p, info = potri(chol, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse from Cholesky failed (info={info})")
    del gram, chol
    _mirror_upper(p)
    # p is the inverse in Fortran order; symmetric, so its transpose is the same matrix in C
    # order (what the weights' row-wise work below expects), without a copy
    inverse: np.ndarray = p.T
    return inverse


def _mirror_upper(p: np.ndarray) -> None:
    """Fill p's strictly lower triangle from its upper one, in place: potri writes only the
    upper triangle. A block of rows at a time, so no second items x items matrix is made."""
    n = len(p)
    for start in range(0, n, MIRROR_BLOCK):
        stop = min(start + MIRROR_BLOCK, n)
        p[start:stop, :start] = p[:start, start:stop].T
        diagonal = p[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        diagonal[lower] = diagonal.T[lower]


def inverse_error(gram: np.ndarray, p: np.ndarray, least_eigenvalue: float) -> float:
    """An estimate of the float32 inverse's largest relative column error, from a few seeded
    columns j: |p_j - exact| <= |G p_j - e_j| / lambda_min(G) (residual in float64)."""
    n = len(gram)
    cols = np.random.default_rng(0).choice(n, min(CHECKED_COLUMNS, n), replace=False)
    pc = p[:, cols].astype(np.float64)
    residual = np.zeros_like(pc)
    for start in range(0, n, ROW_BLOCK):
        rows = slice(start, start + ROW_BLOCK)
        residual[rows] = gram[rows].astype(np.float64) @ pc
    residual[cols, np.arange(len(cols))] -= 1.0
    errors = np.linalg.norm(residual, axis=0) / (least_eigenvalue * np.linalg.norm(pc, axis=0))
    return float(errors.max())


def ease_weights(problem: PenalisedGram) -> np.ndarray:
    """EASE's item x item weights B (float32): -P / diag(P), 0 on the diagonal."""
    p: np.ndarray | None = None
    if problem.n_items >= SINGLE_MIN_ITEMS:
        gram = problem.dense(np.float32)
        p = _inverse(gram.copy())
        # Every eigenvalue is at least l2: the rest (co-counts, session pairs, groups) is
        # positive semi-definite, the dropout penalty positive.
        error = inverse_error(gram, p, problem.l2)
        del gram
        if not error <= SINGLE_TOLERANCE:  # NaN too
            log.info("EASE: float32 inverse off by ~%.1e; computed in float64", error)
            p = None
    if p is None:
        p = _inverse(problem.dense(np.float64))
    b: np.ndarray = (p / -np.diag(p)[None, :]).astype(np.float32, copy=False)
    b[np.diag_indices_from(b)] = 0.0
    return b
