"""Sets of item positions as sorted arrays, built the way a request needs them: small, often.

numpy's `unique` (and `union1d`, which calls it) costs several times a plain sort on the
arrays a request handles (hundreds to thousands of positions); a sort and one comparison give
the same array. `union` also keeps an array that is a set already as it is and merges only
the other into it (the k-NN's and the graph's reach are sets: sorted and unique).
"""

from __future__ import annotations

import numpy as np


def unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values) for a 1-d array: sorted, each value once."""
    ordered = np.sort(values)
    keep = np.empty(len(ordered), dtype=bool)
    keep[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def sums(items: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct `items`, sorted; `values` summed per item, float64): each item's values
    added in entry order, as one bincount over every position would add them."""
    present = unique(items)
    summed = np.bincount(np.searchsorted(present, items), weights=values, minlength=len(present))
    return present, summed.astype(np.float64)


def find(of: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(whether each of `items` is in `of`, where it is or would go) for a sorted `of`: one
    binary search each, where np.isin sorts both arrays again."""
    at = np.searchsorted(of, items)
    if not len(of):
        return np.zeros(len(items), dtype=bool), at
    held: np.ndarray = of[np.minimum(at, len(of) - 1)] == items
    return held, at


def union(of: np.ndarray, more: np.ndarray) -> np.ndarray:
    """np.union1d(of, more) where `of` is sorted and unique already (`more` any 1-d array):
    `more`'s new values inserted in place, never `of` sorted again. A new array."""
    more = unique(more)
    if not len(of):
        return more.astype(np.result_type(of, more))
    held, at = find(of, more)
    return np.insert(of.astype(np.result_type(of, more)), at[~held], more[~held])
