"""Content vectors (title TF-IDF, category, price band) that make products nobody took yet
reachable: a new catalog item is proposed to users whose items read like it.

Collaborative signals (embeddings, neighbour graph, popularity) are all zero for an item without
interactions, so without this a product added to the catalog could never be recommended.
"""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sp

from shared.ml.interactions import sparse_arrays, sparse_from


class ContentIndex:
    """Content rows of the catalog's *fresh* items (no interactions when the model was built),
    searched with the content rows of what a user took."""

    def __init__(self, vectors: sp.csr_matrix, fresh: np.ndarray) -> None:
        self.vectors = sp.csr_matrix(vectors, dtype=np.float32)
        self.fresh = np.asarray(fresh, dtype=np.int64)
        self._fresh_rows = self.vectors[self.fresh].T.tocsr()  # (features x fresh)

    @classmethod
    def empty(cls, n_items: int) -> ContentIndex:
        """No content known: nothing is reachable this way."""
        return cls(sp.csr_matrix((n_items, 1), dtype=np.float32), np.empty(0, dtype=np.int64))

    def matches(
        self,
        seeds: np.ndarray,
        weights: np.ndarray,
        n: int,
        allowed: np.ndarray | None = None,
        min_similarity: float = 0.2,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to n fresh item positions most like the weighted seeds, with their cosine to the
        seeds' profile; only matches at `min_similarity` or above (a weak match is noise)."""
        if not len(self.fresh) or not len(seeds) or n <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        profile = np.asarray(self.vectors[seeds].T @ weights).ravel()
        norm = float(np.linalg.norm(profile))
        if norm == 0.0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        # only the fresh items sharing one of the profile's words: a big catalog's fresh items
        # are mostly strangers to any one user, and a product over all of them costs milliseconds
        words = np.flatnonzero(profile)
        row = sp.csr_matrix(profile[words][None, :] / norm)
        found = (row @ self._fresh_rows[words]).tocsr()
        found.sort_indices()
        cand, sims = found.indices.astype(np.int64), found.data
        ok = sims >= min_similarity
        if allowed is not None:
            ok &= allowed[self.fresh[cand]]
        cand, sims = cand[ok], sims[ok]
        order = np.argsort(-sims, kind="stable")[:n]
        return self.fresh[cand[order]], sims[order].astype(np.float32)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, fresh=self.fresh, **sparse_arrays(self.vectors))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ContentIndex:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return cls(sparse_from(npz), npz["fresh"])
