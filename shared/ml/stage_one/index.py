"""Stage one's artifact: item embeddings, learned neighbour graph, low-rank filter or ALS item
factors, popularity.

Loaded by the candidate service; fitted by `shared.ml.stage_one.fit`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from shared.ml import sorted_sets
from shared.ml.interactions import sparse_arrays, sparse_from
from shared.ml.stage_one.fold_in import FoldIn
from shared.ml.stage_one.longest_first import LongestFirst, is_wide
from shared.ml.stage_one.neighbour_cache import NeighbourCache
from shared.ml.stage_one.vector_index import AnnParams, ExactIndex, VectorIndex, build_vector_index

# Catalogs up to TABLE_MAX_ITEMS keep each item's TABLE_WIDTH nearest neighbours in a table
# (30k items: 46 MB, ~15 s to build on 2 cores); bigger ones search (exact or HNSW) the first
# time an item is a seed and keep the answer (`NeighbourCache`).
TABLE_MAX_ITEMS = 30_000


TABLE_WIDTH = 128


class CandidateIndex:
    """Cosine k-NN over item embeddings; popularity serves cold users and top-ups.

    Vectors are unit length; `similar` searches them through a `VectorIndex`: exact (one matrix
    product and a partial sort) unless `use_backend` installs HNSW for a big catalog.
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        popularity: np.ndarray,
        graph: sp.csr_matrix | None = None,
        lowrank: LowRankFilter | None = None,
        fold_in: FoldIn | None = None,
        search: VectorIndex | None = None,
    ) -> None:
        """`search`: a k-NN index already built over `embeddings` (training shares one across
        its recipes); exact search over them otherwise."""
        self.embeddings = embeddings.astype(np.float32)
        self.popularity = popularity.astype(np.float32)
        # Optional learned item -> item neighbour weights (top-M per item): see `neighbour_graph`.
        self.graph = graph
        # Optional dense low-rank item -> item weights added to the graph's: see `lowrank_filter`.
        self.lowrank = lowrank if graph is not None else None
        # Optional ALS item factors: stage one's score is then ALS's (the graph only explains).
        self.fold_in = fold_in if graph is not None else None
        n = len(self.embeddings)
        sizes = {
            "graph": n if graph is None else graph.shape[0],
            "low-rank filter": n if self.lowrank is None else self.lowrank.left.shape[0],
            "ALS factors": n if self.fold_in is None else self.fold_in.n_items,
        }
        for name, size in sizes.items():
            if size != n:  # refused when a version loads, not when a request meets it
                raise ValueError(f"the {name} covers {size} items, the catalog {n}")
        self._popular_order = np.argsort(-self.popularity, kind="stable")
        self.vectors: VectorIndex = search if search is not None else ExactIndex(self.embeddings)
        self._table: tuple[np.ndarray, np.ndarray] | None = None
        self._cache: NeighbourCache | None = None

    def use_backend(self, params: AnnParams | None) -> None:
        """Search through the backend `params` choose (exact below `params.min_items` items).

        Called once at model load, before the index serves. An HNSW graph is built here from the
        embeddings, never stored: the artifact stays the plain embeddings (one format, checked by
        sha256, readable without hnswlib), at the cost of the build time in docs/benchmarks.md.
        """
        self.vectors = build_vector_index(self.embeddings, params)
        self._table, self._cache = None, None
        if self._table_fits():
            self.neighbour_table()  # now, not in the first request
        for scorer in (self.lowrank, self.fold_in):
            if scorer is not None:
                scorer.prepare()

    @property
    def n_items(self) -> int:
        return len(self.embeddings)

    def similar(self, seeds: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour positions, cosine similarities), each (len(seeds), min(n, n_items))."""
        if n <= TABLE_WIDTH and self._table_fits():
            ids, sims = self.neighbour_table()
            return ids[seeds, :n], sims[seeds, :n]
        if n <= TABLE_WIDTH:
            return self.neighbour_cache().get(seeds, n)
        return self.vectors.search(self.embeddings[seeds], n)

    @property
    def kept_neighbours(self) -> NeighbourCache | None:
        """The kept neighbours, once a request has used them (None before, or with a table)."""
        return self._cache

    def neighbour_cache(self) -> NeighbourCache:
        """The nearest items of those that have been seeds, kept (a catalog past the table)."""
        if self._cache is None:
            width = min(TABLE_WIDTH, self.n_items)
            vectors = self.vectors  # the cache belongs to this index; `use_backend` drops it
            self._cache = NeighbourCache(
                lambda items: vectors.search(self.embeddings[items], width), self.n_items, width
            )
        return self._cache

    def _table_fits(self) -> bool:
        return isinstance(self.vectors, ExactIndex) and self.n_items <= TABLE_MAX_ITEMS

    def neighbour_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's TABLE_WIDTH nearest items, computed once: seeds are catalog items, so a
        request (or each of the trainer's thousands of lists) looks its seeds up instead of
        multiplying them against the whole catalog again."""
        if self._table is None:
            parts = [
                self.vectors.search(self.embeddings[i : i + 2048], TABLE_WIDTH)
                for i in range(0, self.n_items, 2048)
            ]
            self._table = (
                np.vstack([ids for ids, _ in parts]),
                np.vstack([sims for _, sims in parts]),
            )
        return self._table

    def popular(self, n: int, exclude: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
        """The n most popular items outside `exclude` (and inside the `allowed` mask, if any)."""
        order: np.ndarray = self._popular_order
        # the head of the order first, wider until it holds n: every request tops up here, and
        # a mask over a million items costs more than the rest of its search
        size = max(n, 0) + len(exclude)
        while True:
            head = order[:size]
            keep = ~within(head, exclude, len(order))
            if allowed is not None:
                keep &= allowed[head]
            picked: np.ndarray = head[keep][: max(n, 0)]
            if len(picked) >= n or size >= len(order):
                return picked
            size = 4 * size + 64

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        g = self.graph if self.graph is not None else sp.csr_matrix((0, 0), dtype=np.float32)
        graph = sparse_arrays(g, "graph_")
        lowrank: dict[str, Any] = {}
        if self.lowrank is not None:
            lowrank = {"lowrank_left": self.lowrank.left, "lowrank_right": self.lowrank.right}
        if self.fold_in is not None:
            f = self.fold_in
            lowrank["als_factors"], lowrank["als_users"] = f.factors, f.users
            lowrank["als_solve"] = np.array(
                [f.regularization, f.alpha, float(f.log_strengths)], dtype=np.float64
            )
        np.savez(buf, embeddings=self.embeddings, popularity=self.popularity, **graph, **lowrank)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CandidateIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            graph = sparse_from(npz, "graph_")
            lowrank = None
            if "lowrank_left" in npz.files:
                lowrank = LowRankFilter(npz["lowrank_left"], npz["lowrank_right"])
            fold_in = None
            if "als_factors" in npz.files:
                solve = npz["als_solve"].tolist()
                # two values: a version trained before the log-scaled confidence
                logs = len(solve) > 2 and bool(solve[2])
                fold_in = FoldIn(npz["als_factors"], solve[0], solve[1], npz["als_users"], logs)
            graph_or_none = graph if graph.shape[0] else None
            return cls(npz["embeddings"], npz["popularity"], graph_or_none, lowrank, fold_in)


@dataclass
class LowRankFilter:
    """Item -> item weights left @ right (items x rank, rank x items), kept as the two factors:
    a user's score is (their items' rows of left, summed) @ right, rank x items per request."""

    left: np.ndarray
    right: np.ndarray
    # `right`'s columns as rows, longest first: built on the first scan
    _by_length: LongestFirst | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n, rank = self.left.shape
        if self.right.shape != (rank, n):
            raise ValueError(f"low-rank factors {self.left.shape} and {self.right.shape} differ")

    @property
    def n_items(self) -> int:
        return int(self.left.shape[0])

    @property
    def scans(self) -> bool:
        """Whether `top` scans (a wide catalog) rather than every item being scored."""
        return is_wide(self.n_items)

    def query(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The user's side of the product: their items' rows of `left`, weighted and summed."""
        # float32 like the factors: a float64 copy of `right` would cost more than the product
        summed: np.ndarray = np.asarray(weights, dtype=np.float32) @ self.left[items]
        return summed

    def scores(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Every item's score (float64) for a user who took `items` with `weights`."""
        out: np.ndarray = (self.query(items, weights) @ self.right).astype(np.float64)
        return out

    def at(self, query: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The scores (float64) of `items` alone for a user's `query` (see `query`)."""
        out: np.ndarray = (query @ self.right[:, items]).astype(np.float64)
        return out

    def top(
        self, query: np.ndarray, k: int, skip: np.ndarray, allowed: np.ndarray | None
    ) -> np.ndarray:
        """Items (outside `skip`, in any order; inside `allowed`) whose score is among the k
        best of such items, ties included (`LongestFirst.top`: exact, no index to build). The
        scan stops once nothing left can score above zero: the filter alone never proposes such
        items."""
        return self._longest_first().top(query, k, skip, allowed, floor=0.0)

    def prepare(self) -> None:
        """Sort the columns for `top` now (a wide catalog), not in the first request."""
        if self.scans:
            self._longest_first()

    def _longest_first(self) -> LongestFirst:
        if self._by_length is None:
            self._by_length = LongestFirst(self.right.T)
        return self._by_length


# Serving-path helpers on a CSR matrix's own arrays: scipy's fancy row indexing builds
# intermediate matrices on every call, which was a third of the candidate stage's time.
def member_mask(items: np.ndarray, n: int) -> np.ndarray:
    """A boolean mask over n items, True at `items` (np.isin sorts: many times slower here)."""
    mask = np.zeros(n, dtype=bool)
    mask[items] = True
    return mask


def within(items: np.ndarray, of: np.ndarray, n_items: int) -> np.ndarray:
    """Whether each of `items` is one of `of` (np.isin's sorting costs more at this size)."""
    if not is_wide(n_items):
        inside: np.ndarray = member_mask(of, n_items)[items]
        return inside
    return sorted_sets.find(np.sort(of), items)[0]
