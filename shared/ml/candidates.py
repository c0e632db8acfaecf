"""Stage one: item embeddings, a k-NN index over them, candidates seeded by recent items."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import TruncatedSVD

from shared.ml.interactions import DAY, UserItemStats

SEED_HALF_LIFE_DAYS = 30.0


def item_embeddings(stats: UserItemStats, n_items: int, dim: int, seed: int) -> np.ndarray:
    """L2-normalised item vectors from a truncated SVD of the user x item matrix.

    Rows are scaled by 1/sqrt(activity) so heavy users do not define the space alone; cosine between
    the resulting vectors approximates item-item co-occurrence similarity.
    """
    m = stats.matrix(n_items, "strength").astype(np.float64)
    m.data = np.log1p(m.data)
    activity = np.asarray(m.getnnz(axis=1), dtype=np.float64)
    m = m.multiply(1.0 / np.sqrt(np.maximum(activity, 1.0))[:, None]).tocsr()
    k = max(1, min(dim, min(m.shape) - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=7)
    svd.fit(m)
    vectors: np.ndarray = (svd.components_.T * svd.singular_values_).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = vectors / np.maximum(norms, 1e-12)  # items nobody took stay all-zero
    return unit


class CandidateIndex:
    """Exact cosine k-NN over item embeddings; popularity serves cold users and top-ups.

    Vectors are unit length, so exact search is one matrix product and a partial sort. sklearn's
    NearestNeighbors gives the same answer but spends ~4 ms per query validating its inputs, which
    is most of a request's budget; an ANN backend for big catalogs plugs in behind `similar`.
    """

    def __init__(self, embeddings: np.ndarray, popularity: np.ndarray) -> None:
        self.embeddings = embeddings.astype(np.float32)
        self.popularity = popularity.astype(np.float32)
        self._popular_order = np.argsort(-self.popularity, kind="stable")

    @property
    def n_items(self) -> int:
        return len(self.embeddings)

    def similar(self, seeds: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(neighbour positions, cosine similarities), each (len(seeds), n)."""
        n = min(n, self.n_items)
        sims = self.embeddings[seeds] @ self.embeddings.T
        idx = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        top = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        return np.take_along_axis(idx, order, axis=1), np.take_along_axis(top, order, axis=1)

    def popular(self, n: int, exclude: np.ndarray) -> np.ndarray:
        mask = np.isin(self._popular_order, exclude, invert=True)
        return self._popular_order[mask][:n]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, embeddings=self.embeddings, popularity=self.popularity)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CandidateIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return cls(npz["embeddings"], npz["popularity"])


@dataclass(frozen=True)
class Candidates:
    items: np.ndarray  # item positions, best first
    scores: np.ndarray
    seeds: np.ndarray  # the seed item that contributed most, -1 for popularity top-ups


def generate_candidates(
    index: CandidateIndex,
    history: UserItemStats,
    user: int,
    as_of: float,
    n: int,
    n_seeds: int = 20,
    per_seed: int = 100,
) -> Candidates:
    """Neighbours of the user's most recent items, weighted by strength and recency, merged; items
    the user already has are excluded; popular items top the list up to `n`."""
    if user >= 0:
        sl = history.row(user)
        seen = history.indices[sl]
        last = history.last_ts[sl]
        order = np.argsort(-last, kind="stable")[:n_seeds]
        seeds = seen[order]
        weights = np.log1p(history.strength[sl][order]) * 0.5 ** (
            (as_of - last[order]) / DAY / SEED_HALF_LIFE_DAYS
        )
    else:
        seen = seeds = np.empty(0, dtype=np.int64)
        weights = np.empty(0, dtype=np.float64)
    scores = np.zeros(index.n_items, dtype=np.float64)
    best = np.full(index.n_items, -1, dtype=np.int64)
    if len(seeds):
        nbr, sim = index.similar(seeds, per_seed + 1)
        contrib = np.maximum(sim, 0.0) * weights[:, None]
        np.add.at(scores, nbr.ravel(), contrib.ravel())
        # strongest seed per item, for the `similar_to:` reason
        top = np.zeros(index.n_items)
        for row in range(len(seeds)):
            better = contrib[row] > top[nbr[row]]
            top[nbr[row][better]] = contrib[row][better]
            best[nbr[row][better]] = seeds[row]
    scores[seen] = 0.0
    reached = np.flatnonzero(scores > 0)
    reached = reached[np.argsort(-scores[reached], kind="stable")][:n]
    fill = index.popular(n - len(reached), exclude=np.concatenate([seen, reached]))
    items = np.concatenate([reached, fill]).astype(np.int64)
    return Candidates(items=items, scores=scores[items].astype(np.float32), seeds=best[items])
