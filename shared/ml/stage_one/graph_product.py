"""Users' rows times the neighbour graph, for scores over many users at once (validation, the
low-rank filter's scale): through the graph's dense form where that is cheaper.

A sparse x sparse product walks, for each user, every stored weight of every item the user took;
where the graph holds most of its cells (EASE over every item, thousands of neighbours per item)
that is a dense product done one entry at a time. A sparse x dense product does the same sums,
in the same order and precision, a row of the graph at a time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# The dense form is made only where it is small (64 MB in float32; rows in float64 widen it to
# 128 MB for the product) and most of it is held.
DENSE_MAX_CELLS = 1 << 24
DENSE_MIN_FILL = 0.25


def dense_form(graph: sp.csr_matrix) -> np.ndarray | None:
    """The graph as a dense array in its own dtype where a product with it is cheaper that way,
    else None."""
    cells = graph.shape[0] * graph.shape[1]
    if cells > DENSE_MAX_CELLS or graph.nnz < DENSE_MIN_FILL * cells:
        return None
    dense: np.ndarray = graph.toarray()
    return dense


def times_graph(rows: sp.csr_matrix, graph: sp.csr_matrix, dense: np.ndarray | None) -> np.ndarray:
    """rows @ graph as a dense float64 array; `dense` is `dense_form(graph)`, made once by the
    caller for many blocks of rows."""
    product = rows @ graph if dense is None else rows @ dense
    if sp.issparse(product):
        product = product.toarray()
    out: np.ndarray = np.asarray(product, dtype=np.float64)
    return out
