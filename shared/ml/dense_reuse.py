"""The last dense EASE fit, kept for the next identical one inside a scope.

`recsys evaluate` and training fit EASE over the same data more than once: the EASE baseline on
a validation split, then stage one as EASE over that split where the baseline won; the baseline
on the test split's training part, then stage one over it again. Over a catalog of 10-20k
products each fit costs minutes (items^3). Inside `reuse_dense_fits()` the last fit's weights
are kept, keyed by everything the closed form reads (the binary matrix's Gram, the penalties,
the extra pairs and groups), and handed to an identical fit; outside a scope nothing is kept (a
worker would otherwise hold gigabytes between trainings). One fit is kept, not two: the second
slot's reuse did not pay for its memory (docs/decisions.md, 2026-12-05 eighth).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from shared.ml.ease_inverse import PenalisedGram

# Below this many items a fit takes seconds at most: not worth the memory of keeping it.
MIN_ITEMS = 2_000


@dataclass
class _Kept:
    key: bytes
    weights: np.ndarray


# One slot per open scope (nested scopes share nothing); empty: no scope, nothing kept.
_scopes: list[_Kept | None] = []


@contextmanager
def reuse_dense_fits() -> Iterator[None]:
    _scopes.append(None)
    try:
        yield
    finally:
        _scopes.pop()


def fit_key(problem: PenalisedGram) -> bytes | None:
    """What an EASE fit's weights depend on, hashed; None where nothing would be kept (no open
    scope, or a catalog too small to bother)."""
    if not _scopes or problem.n_items < MIN_ITEMS:
        return None
    h = hashlib.blake2b(digest_size=32)
    shape, penalties = problem.gram.shape, (problem.l2, problem.dropout, problem.group_weight)
    h.update(repr((shape, *(float(v) for v in penalties))).encode())
    for m in [problem.gram] if problem.extra is None else [problem.gram, problem.extra]:
        m.sort_indices()
        for a in (m.indptr, m.indices, m.data):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(b"|")
    for g in problem.groups if problem.group_weight > 0 else ():  # unweighted: no change
        h.update(np.asarray(g, dtype=np.int64).tobytes())
        h.update(b"/")
    return h.digest()


def kept(key: bytes | None) -> np.ndarray | None:
    """The weights of an identical fit in this scope, else None (and the slot is freed: the
    fit about to run needs the memory)."""
    if key is None:  # a key is made only inside a scope
        return None
    slot = _scopes[-1]
    if slot is not None and slot.key == key:
        return slot.weights
    _scopes[-1] = None
    return None


def keep(key: bytes | None, weights: np.ndarray) -> None:
    if key is None:
        return
    weights.flags.writeable = False  # shared by every model that reuses it
    _scopes[-1] = _Kept(key, weights)
