"""`NeighbourCache`: the answers a search gives, searched once per kept item."""

from __future__ import annotations

import numpy as np

from shared.ml.stage_one.neighbour_cache import NeighbourCache
from shared.ml.stage_one.vector_index import ExactIndex


def counted(index: ExactIndex, vectors: np.ndarray, width: int) -> tuple[list[int], NeighbourCache]:
    searched: list[int] = []

    def search(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        searched.extend(items.tolist())
        return index.search(vectors[items], width)

    return searched, NeighbourCache(search, len(vectors), width, capacity=3)


def vectors(n: int = 200, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def test_answers_are_the_searchs_head() -> None:
    v = vectors()
    index = ExactIndex(v)
    _, cache = counted(index, v, 16)
    for items in ([5, 9, 5], [9, 1, 2, 3, 4], [4, 4]):  # repeats, kept and evicted items
        seeds = np.array(items)
        got_ids, got_sims = cache.get(seeds, 10)
        want_ids, want_sims = index.search(v[seeds], 10)
        np.testing.assert_array_equal(got_ids, want_ids)
        # a product over a different batch of queries may round the last float32 bit otherwise
        np.testing.assert_allclose(got_sims, want_sims, rtol=1e-6)


def test_a_kept_item_is_not_searched_again_until_evicted() -> None:
    v = vectors()
    searched, cache = counted(ExactIndex(v), v, 16)
    cache.get(np.array([1, 2, 1]), 5)
    assert searched == [1, 2]  # once each, the repeat included
    cache.get(np.array([2, 1]), 5)
    assert searched == [1, 2] and cache.hits == 2 + 0 and cache.misses == 3
    cache.get(np.array([3, 4]), 5)  # capacity 3: item 1, the oldest, makes room
    assert searched == [1, 2, 3, 4]
    cache.get(np.array([1, 4]), 5)
    assert searched == [1, 2, 3, 4, 1]
