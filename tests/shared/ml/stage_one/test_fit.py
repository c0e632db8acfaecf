"""The neighbour graph stage one scores with: EASE's weights, pruned per item by magnitude."""

from __future__ import annotations

import numpy as np

from shared.ml.baselines import EASE
from shared.ml.interactions import UserItemStats, user_item_stats
from shared.ml.stage_one.fit import neighbour_graph

N_USERS, N_ITEMS = 300, 12


def _two_tastes() -> UserItemStats:
    """Two groups of users who each take most of their own half of the catalog and rarely the
    other's: EASE's weights across the halves are negative, and large."""
    rng = np.random.default_rng(3)
    group = np.arange(N_USERS) % 2
    own = (np.arange(N_ITEMS)[None, :] < N_ITEMS // 2) == (group[:, None] == 0)
    taken = rng.random((N_USERS, N_ITEMS)) < np.where(own, 0.7, 0.05)
    u, i = np.nonzero(taken)
    return user_item_stats(u, i, np.ones(len(u)), np.arange(len(u), dtype=float), N_USERS, N_ITEMS)


def test_each_row_keeps_its_largest_weights_by_magnitude_negative_ones_too() -> None:
    stats = _two_tastes()
    top = 8
    graph = neighbour_graph(stats, N_ITEMS, l2=5.0, top=top).toarray()
    ease = EASE(l2=5.0)
    ease.fit(stats.matrix(N_ITEMS))
    b = ease.item_weights
    assert (graph < 0).sum() > 0  # the other half's items: kept, with their sign
    for row, full in zip(graph, b, strict=True):
        kept = row != 0
        assert kept.sum() == top
        assert np.allclose(row[kept], full[kept], atol=1e-6)
        # nothing dropped is larger in magnitude than what was kept
        assert np.abs(full[~kept]).max() <= np.abs(full[kept]).min() + 1e-6
