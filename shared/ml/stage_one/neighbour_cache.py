"""Each item's nearest items, kept for the items requests ask about: the neighbour table of a
catalog too wide for a whole one.

A catalog of up to 30k items keeps every item's nearest neighbours in a table built at load
(`CandidateIndex.neighbour_table`); a wider one searched its k-NN index for every seed of every
request: 20 HNSW searches, ~1.7 ms of a 3.6 ms request at a million products. Seeds are what
users took, and users take the same popular items: the first search of an item is kept, in a
bounded table whose oldest rows make room for new ones (first in, first out).

A kept row is what a new search would return (similarities up to the last float32 bit, which
depends on the batch of queries a product computes): it holds the index's `width` nearest, and
a request asking for fewer gets their head (HNSW's answer to a narrower query is the head
of the wider one whenever its beam, `ef_search`, is at least `width`, as by default).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

# Rows kept per loaded version: 128 neighbours as int32 + float32 each, 64 MB when all are used
# (pages are committed as rows fill).
CACHE_ROWS = 65_536

Search = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class NeighbourCache:
    """`search(items)` -> (neighbour positions, similarities), each (len(items), width), kept
    for up to `capacity` items. Safe to share between threads (training's lists)."""

    def __init__(self, search: Search, n_items: int, width: int, capacity: int = CACHE_ROWS):
        self._search = search
        self.width = width
        self.capacity = max(capacity, 1)
        self._slot = np.full(n_items, -1, dtype=np.int64)  # item -> its row, -1 when not kept
        self._owner = np.full(self.capacity, -1, dtype=np.int64)  # row -> its item
        self._ids = np.zeros((self.capacity, width), dtype=np.int32)
        self._sims = np.zeros((self.capacity, width), dtype=np.float32)
        self._next = 0  # the row the next kept item takes (the oldest once all are used)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.kept = 0  # items held now

    def get(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n (at most `width`) nearest of each of `items`, searched for those not kept."""
        n = min(n, self.width)
        ids = np.empty((len(items), n), dtype=np.int64)
        sims = np.empty((len(items), n), dtype=np.float32)
        with self._lock:
            slots = self._slot[items]
            held = slots >= 0
            ids[held] = self._ids[slots[held], :n]
            sims[held] = self._sims[slots[held], :n]
            self.hits += int(held.sum())
            self.misses += int((~held).sum())
        if held.all():
            return ids, sims
        missing = np.flatnonzero(~held)
        new = np.unique(items[missing])  # an item can be a seed twice in one request
        found_ids, found_sims = self._search(new)
        at = np.searchsorted(new, items[missing])
        ids[missing] = found_ids[at, :n]
        sims[missing] = found_sims[at, :n]
        with self._lock:
            self._keep(new, found_ids, found_sims)
        return ids, sims

    def _keep(self, items: np.ndarray, ids: np.ndarray, sims: np.ndarray) -> None:
        fresh = self._slot[items] < 0  # another thread may have kept some meanwhile
        items, ids, sims = items[fresh], ids[fresh], sims[fresh]
        k = min(len(items), self.capacity)
        rows = (self._next + np.arange(k)) % self.capacity
        evicted = self._owner[rows]
        self._slot[evicted[evicted >= 0]] = -1
        self._owner[rows] = items[:k]
        self._ids[rows] = ids[:k]
        self._sims[rows] = sims[:k]
        self._slot[items[:k]] = rows
        self.kept = min(self.kept + k, self.capacity)
        self._next = int((self._next + k) % self.capacity)
