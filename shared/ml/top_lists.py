"""Scores to ranked item lists: each row's k best item positions, its excluded items skipped.

Three forms of the same contract, for three shapes of score: `top_k` over dense rows (any model),
`sparse_top_k` over sparse non-negative rows (item-kNN: a user's row is zero outside the
neighbours of what they have), `factor_top_k` over user x item factor products (ALS), which
never holds more than a block of rows at once. Lists are best first, ties within a list go to
the lower position, and a row ends in -1 only when fewer than k items remain after exclusion.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Users scored per block: a 1024 x 4k float32 score block is ~16 MB, however many users are asked;
# on a wide catalog fewer, so that a block holds at most BLOCK_SCORES scores (~128 MB in float64:
# 1024 users x 1M items would be 8 GB).
BATCH_USERS = 1024
BLOCK_SCORES = 16_000_000


def users_per_block(n_items: int) -> int:
    """How many users' dense score rows over `n_items` items are scored at once."""
    return max(1, min(BATCH_USERS, BLOCK_SCORES // max(n_items, 1)))


def _check(k: int, shape: tuple[int, int], exclude_rows: sp.spmatrix) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if exclude_rows.shape != shape:
        raise ValueError(f"exclude_rows shape {exclude_rows.shape} != scores shape {shape}")


def top_k(scores: np.ndarray, k: int, exclude_rows: sp.csr_matrix) -> np.ndarray:
    """Best-first top-k item positions per row of `scores`, skipping nonzeros of `exclude_rows`.

    `exclude_rows` is aligned with `scores` (row r masks row r). Which of several items tied at
    the k-th score make the list is argpartition's choice (deterministic for identical input);
    within the list, ties go to the lower position. Rows with fewer than k allowed items end
    in -1.
    """
    _check(k, scores.shape, exclude_rows)
    n_rows, n_items = scores.shape
    out = np.full((n_rows, k), -1, dtype=np.int64)
    kk = min(k, n_items)
    if kk == 0:
        return out
    exclude_rows = sp.csr_matrix(exclude_rows)
    step = users_per_block(n_items)
    # one copy per block in the scores' own precision (float32 stays float32): masking never
    # touches the caller's array, and on a wide catalog every extra pass over a block costs as
    # much as the partition itself (docs/decisions.md, 2026-12-06 second)
    dtype = np.promote_types(scores.dtype, np.float32)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        block = np.array(scores[start:stop], dtype=dtype)
        if not np.isfinite(block).all():
            # model output made finite (NaN -> lowest): only excluded items sit at -inf, which
            # marks padding below
            np.nan_to_num(block, copy=False, nan=-np.finfo(dtype).max)
        excl = exclude_rows[start:stop].tocoo()
        block[excl.row[excl.data != 0], excl.col[excl.data != 0]] = -np.inf
        # negated in place, the k best are the k smallest: introselect is many times slower
        # looking for the k largest of rows that are mostly ties (an item-kNN row is zeros)
        np.negative(block, out=block)
        idx = np.argpartition(block, kk - 1, axis=1)[:, :kk]
        lowest = np.take_along_axis(block, idx, axis=1)
        order = np.lexsort((idx, lowest), axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        lowest = np.take_along_axis(lowest, order, axis=1)
        out[start:stop, :kk] = np.where(np.isposinf(lowest), -1, idx)
    return out


def sparse_top_k(scores: sp.csr_matrix, k: int, exclude_rows: sp.csr_matrix) -> np.ndarray:
    """`top_k` of `scores.toarray()` without making it: the stored positive scores first, then
    (where a row has fewer than k of them) its unscored items, lowest position first.

    Every tie, at the cut too, goes to the lower position. Scores must be finite and >= 0.
    """
    _check(k, scores.shape, exclude_rows)
    n_rows, n_items = scores.shape
    out = np.full((n_rows, k), -1, dtype=np.int64)
    kk = min(k, n_items)
    s = sp.csr_matrix(scores, dtype=np.float64, copy=True)
    s.sum_duplicates()
    if not np.isfinite(s.data).all() or (s.data < 0).any():
        raise ValueError("sparse_top_k needs finite scores >= 0 (an unstored score is 0)")
    ex = sp.csr_matrix(exclude_rows, copy=True)
    ex.eliminate_zeros()
    ex.data[:] = 1.0
    s = s - s.multiply(ex)  # x - x is exactly 0: excluded scores drop out below
    s.eliminate_zeros()
    if kk == 0:
        return out
    coo = s.tocoo()
    r, c = coo.row.astype(np.int64), coo.col.astype(np.int64)
    order = np.lexsort((c, -coo.data, r))
    r, c = r[order], c[order]
    place = np.arange(len(r)) - np.searchsorted(r, r)  # rank within its row
    keep = place < kk
    out[r[keep], place[keep]] = c[keep]
    scored = np.minimum(np.diff(s.indptr), kk)
    short = np.flatnonzero(scored < kk)
    if len(short):
        _fill_unscored(out, short, scored[short], kk, s, ex)
    return out


def _fill_unscored(
    out: np.ndarray,
    rows: np.ndarray,
    scored: np.ndarray,
    kk: int,
    s: sp.csr_matrix,
    ex: sp.csr_matrix,
) -> None:
    """Complete `rows` of `out` (each holding its `scored` items) with the lowest positions
    neither scored nor excluded: they lie within the first kk + (scored + excluded) positions,
    a block of rows at a time (fewest such positions first, so a block's width is its last
    row's)."""
    n_items = s.shape[1]
    taken = (s[rows] + ex[rows]).tocsr()  # scored and excluded items never overlap
    width = np.minimum(kk + np.diff(taken.indptr), n_items)
    by_width = np.argsort(width, kind="stable")
    start = 0
    while start < len(rows):
        cells = (np.arange(len(rows) - start) + 1) * width[by_width[start:]]
        stop = start + max(1, int(np.searchsorted(cells, BLOCK_SCORES, side="right")))
        block = by_width[start:stop]
        start = stop
        w = int(width[block[-1]])
        head = taken[block][:, :w].toarray() != 0
        # the first allowed positions of each row (False sorts first), fewer than kk at the
        # catalog's end: those show as still-taken picks and stay -1
        pick = np.argsort(head, axis=1, kind="stable")[:, :kk]
        free = ~np.take_along_axis(head, pick, axis=1)
        need = kk - scored[block]
        for j in range(pick.shape[1]):
            rows_j = np.flatnonzero((j < need) & free[:, j])
            out[rows[block[rows_j]], scored[block[rows_j]] + j] = pick[rows_j, j]


def factor_top_k(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    k: int,
    exclude_rows: sp.csr_matrix,
    num_threads: int,
) -> np.ndarray:
    """`top_k` of `user_factors @ item_factors.T` (float32 factors, finite) through implicit's
    batched selection, which scores a hundred users at a time in native threads: on a wide
    catalog the dense path's partition costs more than the product itself."""
    from implicit.cpu.topk import topk

    _check(k, (len(user_factors), len(item_factors)), exclude_rows)
    out = np.full((len(user_factors), k), -1, dtype=np.int64)
    kk = min(k, len(item_factors))
    if kk == 0 or len(user_factors) == 0:
        return out
    ex = sp.csr_matrix(exclude_rows, dtype=np.float32, copy=True)
    ex.eliminate_zeros()  # implicit filters every stored entry, zeros too
    ids, scores = topk(
        np.ascontiguousarray(item_factors, dtype=np.float32),
        np.ascontiguousarray(user_factors, dtype=np.float32),
        kk,
        filter_query_items=ex,
        num_threads=num_threads,
    )
    # implicit marks a filtered item by the lowest float32; its order among ties is its own
    order = np.lexsort((ids, -scores), axis=1)
    ids = np.take_along_axis(ids, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    out[:, :kk] = np.where(scores == -np.finfo(np.float32).max, -1, ids)
    return out
