"""The items whose vectors have the largest inner product with a query, found without scoring
every item: the vectors are read longest first, and an item's score is at most |query| x its
vector's length (Cauchy-Schwarz), so the scan stops once that bound for the next vector falls
below the k-th score found. Exact, nothing to build but one sort (and each item's place in it).

Stage one's item-side factors (the low-rank filter's columns, ALS's item factors) have lengths
that fall steeply (popular items hold the weight): on a 176k-product model a request reads the
first ~2k vectors. Where lengths are flat, or the k-th score is at most zero, it reads them all,
which costs what scoring every item costs.
"""

from __future__ import annotations

import numpy as np

# From this many items on a catalog is wide: stage one's request keeps its scores over the items
# it reaches (thousands) rather than in arrays over the catalog, and finds its scorers' best
# items by `LongestFirst.top` rather than by scoring every item. Below it the arrays and the
# one product over the catalog cost less than the bookkeeping.
WIDE_CATALOG = 32_768
SCAN_BLOCK = 1024  # vectors scored at a time; each next block twice as long


def is_wide(n_items: int) -> bool:
    """Whether a catalog of `n_items` is served the wide way (see WIDE_CATALOG)."""
    return n_items >= WIDE_CATALOG


class LongestFirst:
    """Item vectors (items x rank) sorted by length, for `top`."""

    def __init__(self, vectors: np.ndarray) -> None:
        lengths = np.linalg.norm(vectors, axis=1)
        self.order = np.argsort(-lengths, kind="stable")
        self.rows = np.ascontiguousarray(vectors[self.order], dtype=np.float32)
        self.lengths = lengths[self.order]
        # each item's place in `order`: a request's skipped items are placed once, so a block
        # drops them by their places, not by searching the skip list for each item it reads
        # (that search cost more than the block's scores)
        self.place = np.empty(len(self.order), dtype=np.int64)
        self.place[self.order] = np.arange(len(self.order))

    def top(
        self,
        query: np.ndarray,
        k: int,
        skip: np.ndarray,
        allowed: np.ndarray | None,
        floor: float = -np.inf,
    ) -> np.ndarray:
        """Items (outside `skip`, in any order; inside `allowed`) whose score is among the k
        best of such items, ties at the k-th included: every item that can rank in those k.
        Scores at or below `floor` are not wanted: the scan also stops once nothing left can pass
        it."""
        query = np.asarray(query, dtype=np.float32)
        skipped = np.sort(self.place[skip])
        bound_scale = float(np.linalg.norm(query)) * (1 + 1e-5)  # float32 rounding in the dots
        found_items: list[np.ndarray] = []
        found_values: list[np.ndarray] = []
        start, size, kth = 0, SCAN_BLOCK, -np.inf
        while start < len(self.order) and k > 0:
            stop = min(start + size, len(self.order))
            block = self.order[start:stop]
            values = self.rows[start:stop] @ query
            keep = np.ones(len(block), dtype=bool)
            lo, hi = np.searchsorted(skipped, (start, stop))
            keep[skipped[lo:hi] - start] = False
            if allowed is not None:
                keep &= allowed[block]
            found_items.append(block[keep])
            found_values.append(values[keep])
            items, vals = np.concatenate(found_items), np.concatenate(found_values)
            if len(vals) >= k:
                kth = float(np.partition(vals, len(vals) - k)[len(vals) - k])
                held = vals >= kth
                found_items, found_values = [items[held]], [vals[held]]
            start, size = stop, 2 * size
            bound = bound_scale * float(self.lengths[start]) if start < len(self.order) else 0.0
            if bound < kth or bound <= floor:
                break  # nothing left can reach the k-th score, or pass the floor
        return np.concatenate(found_items) if found_items else np.empty(0, dtype=np.int64)
