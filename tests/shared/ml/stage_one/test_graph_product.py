"""Users' rows times the graph: the dense form only where it pays, the same sums either way."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shared.ml.stage_one import graph_product
from shared.ml.stage_one.graph_product import dense_form, times_graph


def _graph(n: int, density: float, seed: int) -> sp.csr_matrix:
    g = sp.random(n, n, density=density, format="csr", random_state=seed, dtype=np.float32)
    g.data -= 0.5  # EASE's graphs hold negative weights too
    return g


def _rows(n_users: int, n_items: int, dtype: type) -> sp.csr_matrix:
    x = sp.random(n_users, n_items, density=0.05, format="csr", random_state=7, dtype=dtype)
    x.data[:] = 1.0
    return x


def test_a_mostly_held_graph_gives_the_same_scores_through_its_dense_form() -> None:
    graph = _graph(300, 0.9, seed=1)
    dense = dense_form(graph)
    assert dense is not None and dense.dtype == np.float32
    for dtype in (np.float32, np.float64):
        rows = _rows(120, 300, dtype)
        through_dense = times_graph(rows, graph, dense)
        sparse_only = np.asarray((rows @ graph).todense(), dtype=np.float64)
        assert through_dense.dtype == np.float64
        np.testing.assert_array_equal(through_dense, sparse_only)


def test_a_pruned_or_big_graph_stays_sparse(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dense_form(_graph(300, 0.05, seed=2)) is None  # a few neighbours per item
    monkeypatch.setattr(graph_product, "DENSE_MAX_CELLS", 300 * 300 - 1)
    assert dense_form(_graph(300, 0.9, seed=1)) is None  # more cells than it may hold
    rows = _rows(50, 300, np.float64)
    graph = _graph(300, 0.05, seed=2)
    np.testing.assert_array_equal(
        times_graph(rows, graph, None), np.asarray((rows @ graph).todense())
    )
