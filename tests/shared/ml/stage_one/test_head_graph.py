"""A catalog past EASE's dense reach: EASE over the most-taken items, item-kNN rows for the rest."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shared.ml.baselines import EASE, ItemKNN
from shared.ml.interactions import UserItemStats, user_item_stats
from shared.ml.stage_one.fit import head_items, neighbour_graph, with_tail

N_USERS, N_ITEMS = 200, 30


def _stats(seed: int = 4) -> UserItemStats:
    rng = np.random.default_rng(seed)
    # item j is taken with probability falling with j: items 0.. are the head
    taken = rng.random((N_USERS, N_ITEMS)) < np.linspace(0.6, 0.03, N_ITEMS)[None, :]
    u, i = np.nonzero(taken)
    return user_item_stats(u, i, np.ones(len(u)), np.arange(len(u), dtype=float), N_USERS, N_ITEMS)


def test_head_items_are_the_most_taken_and_none_when_the_catalog_is_small() -> None:
    stats = _stats()
    users = np.bincount(stats.indices, minlength=N_ITEMS)
    head = head_items(stats, N_ITEMS, 10)
    assert head is not None and len(head) == 10 and np.all(np.diff(head) > 0)
    assert users[head].min() >= np.delete(users, head).max()
    assert head_items(stats, N_ITEMS, N_ITEMS) is None


def test_ease_over_the_head_equals_ease_fitted_on_those_columns_alone() -> None:
    stats = _stats()
    head = head_items(stats, N_ITEMS, 12)
    assert head is not None
    graph = neighbour_graph(stats, N_ITEMS, l2=10.0, top=N_ITEMS, head=head).toarray()
    ease = EASE(l2=10.0)
    ease.fit(stats.matrix(N_ITEMS)[:, head])
    block = graph[np.ix_(head, head)]
    kept = block != 0  # each row keeps its 11 strongest of 12 weights (one is its own 0)
    assert kept.sum() >= 11 * 11 - 2
    assert np.allclose(block[kept], ease.item_weights[kept], atol=1e-6)
    tail = np.setdiff1d(np.arange(N_ITEMS), head)
    assert not graph[tail].any() and not graph[:, tail].any()


def test_the_tail_gets_item_knn_rows_on_the_heads_scale() -> None:
    stats = _stats()
    head = head_items(stats, N_ITEMS, 12)
    assert head is not None
    graph = neighbour_graph(stats, N_ITEMS, l2=10.0, top=5, head=head)
    full = with_tail(graph, stats, head, neighbours=5).toarray()
    tail = np.setdiff1d(np.arange(N_ITEMS), head)
    assert np.allclose(full[head], graph.toarray()[head])  # head rows untouched
    knn = ItemKNN(neighbours=5)
    knn.fit(stats.matrix(N_ITEMS))
    cosine = knn.similarity.toarray()[tail]
    scaled = full[tail]
    assert np.array_equal(scaled > 0, cosine > 0)  # the same neighbours, rescaled
    ratio = scaled[cosine > 0] / cosine[cosine > 0]
    assert np.allclose(ratio, ratio[0])
    head_max = graph.toarray()[head].max(axis=1)
    assert np.isclose(scaled.max(axis=1).mean(), head_max[head_max > 0].mean(), rtol=1e-5)


def test_item_knn_rows_of_a_subset_match_its_full_fit() -> None:
    x = sp.csr_matrix(_stats().matrix(N_ITEMS))
    knn = ItemKNN(neighbours=6)
    knn.fit(x)
    some = np.array([0, 7, 29])
    rows = knn.rows(sp.csr_matrix((x > 0).astype(np.float64)), some).toarray()
    assert np.allclose(rows[some], knn.similarity.toarray()[some])
    assert not np.delete(rows, some, axis=0).any()
