"""Nearest neighbours over unit-length item vectors: exact, or approximate (HNSW) for big catalogs.

Every backend answers `search(queries, n) -> (ids, sims)`: for each query row the `min(n, items)`
items with the highest inner product (cosine, the vectors being unit length), best first.

Exact search is one matrix product and a partial sort, which is the right answer for the catalogs
this project serves (thousands of items: well under a millisecond). Its cost grows with the
catalog, though (~1 ms per query at 100k items, ~35 ms at a million); HNSW (hnswlib) answers from
a graph in under a millisecond at that size, approximately (recall@100 ~0.97), after a build of
minutes. `build_vector_index` chooses by `AnnParams`: HNSW when it is asked for (the
default) AND the catalog has at least `min_items` items, exact otherwise. The numbers are in
docs/benchmarks.md ("Candidate index at scale").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import hnswlib
import numpy as np

AnnBackend = Literal["exact", "hnsw"]


class VectorIndex(Protocol):
    @property
    def n_items(self) -> int: ...

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(item positions int64, similarities float32), each (len(queries), min(n, n_items))."""
        ...


def _empty(rows: int) -> tuple[np.ndarray, np.ndarray]:
    return np.empty((rows, 0), dtype=np.int64), np.empty((rows, 0), dtype=np.float32)


class ExactIndex:
    """Exact k-NN: one matrix product and a partial sort; nothing to build.

    sklearn's NearestNeighbors gives the same answer but spends ~4 ms per query validating its
    inputs, which is most of a request's budget.
    """

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)  # no copy when already float32

    @property
    def n_items(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, self.n_items)
        if n <= 0:
            return _empty(len(queries))
        sims = np.asarray(queries, dtype=np.float32) @ self.vectors.T
        idx = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        top = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        ids = np.take_along_axis(idx, order, axis=1).astype(np.int64, copy=False)
        return ids, np.take_along_axis(top, order, axis=1)


class HnswIndex:
    """Approximate k-NN: an hnswlib graph in inner-product space, built from the vectors.

    All-zero vectors (items nobody interacted with) are left out of the graph: every distance to
    them is the same, so they only blur it. Exact search ranks them at similarity 0, so they come
    back here too, at similarity 0, only when a query asks for more items than the graph holds.

    `m` (links per node), `ef_construction` (build beam) and `ef_search` (query beam, raised to
    `n` when a query asks for more) trade build time, memory and speed against recall. The graph
    is the same on every build when `num_threads` is 1 (levels come from `seed`, items are
    inserted in order); with more threads the insertion order, so the graph, varies slightly.
    hnswlib keeps its own copy of the vectors next to the graph.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 150,
        num_threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2:
            raise ValueError(f"vectors must be (items, dim), got shape {self.vectors.shape}")
        usable = np.isfinite(self.vectors).all(axis=1) & (np.abs(self.vectors).sum(axis=1) > 0)
        self._in_graph = np.flatnonzero(usable)
        self._outside = np.flatnonzero(~usable)
        self.ef_search = ef_search
        self._ef = ef_search
        self._graph = hnswlib.Index(space="ip", dim=self.vectors.shape[1])
        self._graph.init_index(
            max_elements=max(len(self._in_graph), 1),
            M=m,
            ef_construction=ef_construction,
            random_seed=seed,
        )
        self._graph.set_num_threads(num_threads)
        self._graph.set_ef(self._ef)
        if len(self._in_graph):
            # no fancy-indexed copy of a big catalog when every item has a vector
            data = self.vectors if not len(self._outside) else self.vectors[self._in_graph]
            self._graph.add_items(data, self._in_graph)

    @property
    def n_items(self) -> int:
        return len(self.vectors)

    def set_ef_search(self, ef: int) -> None:
        """Another query beam width (no rebuild): wider finds more true neighbours, slower."""
        self.ef_search = self._ef = ef
        self._graph.set_ef(ef)

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(queries, dtype=np.float32)
        n = min(n, self.n_items)
        k = min(n, len(self._in_graph))
        if n <= 0:
            return _empty(len(q))
        if k == 0 or len(q) == 0:
            ids, sims = _empty(len(q))
        else:
            if k > self._ef:  # the beam must be at least as wide as the answer
                self._ef = k
                self._graph.set_ef(k)
            try:
                labels, dist = self._graph.knn_query(q, k=k)
            except RuntimeError:
                # hnswlib refuses when its beam reached fewer than k items (a badly connected
                # graph, e.g. many duplicates); the exact answer is always available.
                return ExactIndex(self.vectors).search(q, n)
            ids = labels.astype(np.int64)
            sims = (1.0 - dist).astype(np.float32)  # "ip" distance is 1 - inner product
        if n > k:  # asked for more than the graph holds: the left-out items, at similarity 0
            pad = np.broadcast_to(self._outside[: n - k], (len(q), n - k))
            ids = np.concatenate([ids, pad], axis=1)
            sims = np.concatenate([sims, np.zeros(pad.shape, dtype=np.float32)], axis=1)
            order = np.argsort(-sims, axis=1, kind="stable")
            ids = np.take_along_axis(ids, order, axis=1)
            sims = np.take_along_axis(sims, order, axis=1)
        return ids, sims


@dataclass(frozen=True)
class AnnParams:
    """Which backend serves k-NN, and HNSW's knobs (see `HnswIndex`)."""

    backend: AnnBackend = "hnsw"
    min_items: int = 50_000  # HNSW only from this catalog size on; below it exact is fast enough
    # Tuned on 1M clustered 64-d vectors (`make bench-scale`; results in docs/benchmarks.md):
    # a smaller M needed a wider beam for the same recall, so it was slower per query.
    m: int = 32
    ef_construction: int = 200
    ef_search: int = 150
    num_threads: int = 1
    seed: int = 0


def build_vector_index(vectors: np.ndarray, params: AnnParams | None = None) -> VectorIndex:
    """ExactIndex, or HnswIndex when `params` ask for it and the catalog is big enough."""
    if params is None or params.backend == "exact" or len(vectors) < params.min_items:
        return ExactIndex(vectors)
    return HnswIndex(
        vectors,
        m=params.m,
        ef_construction=params.ef_construction,
        ef_search=params.ef_search,
        num_threads=params.num_threads,
        seed=params.seed,
    )
