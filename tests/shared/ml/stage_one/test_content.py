"""Content vectors for products nobody took yet, and the places the ranker keeps for them."""

from __future__ import annotations

import numpy as np

from shared.ml.stage_one.content import ContentIndex
from shared.ml.stage_one.fit import content_matrix
from shared.ml.stage_two.serving import reserve_slots

TITLES = ["Acme Lamp", "Acme Vase", "Nova Headphones", "Nova Charger", "Acme Lamp Mini", None]
CATEGORIES = ["home", "home", "electronics", "electronics", "home", None]
PRICES = [20.0, 25.0, 99.0, 15.0, 18.0, None]


def test_rows_are_unit_and_alike_products_are_closest() -> None:
    m = content_matrix(TITLES, CATEGORIES, PRICES)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[:5], 1.0, rtol=1e-5)
    assert norms[5] == 0.0  # nothing known about it: similar to nothing
    sims = (m @ m.T).toarray()
    assert np.argsort(-sims[4])[1] == 0  # "Acme Lamp Mini" reads most like "Acme Lamp"
    assert sims[0, 1] > sims[0, 2]  # same brand and category beats another category


def test_matches_find_fresh_items_like_the_seeds_and_respect_filters() -> None:
    index = ContentIndex(content_matrix(TITLES, CATEGORIES, PRICES), np.array([3, 4, 5]))
    found, sims = index.matches(np.array([0, 1]), np.array([1.0, 1.0]), n=2)
    assert found[0] == 4  # the other Acme home item, not the Nova charger
    assert np.all(np.diff(sims) <= 0)
    allowed = np.ones(6, dtype=bool)
    allowed[4] = False
    found, _ = index.matches(np.array([0, 1]), np.array([1.0, 1.0]), n=2, allowed=allowed)
    assert 4 not in found.tolist()
    nothing, _ = index.matches(np.array([5]), np.array([1.0]), n=2)  # an empty profile
    assert len(nothing) == 0


def test_matches_equal_a_product_over_every_fresh_item() -> None:
    """Only fresh items sharing a word with the profile are scored: the same matches, scores
    and order as the cosine against every fresh item."""
    rng = np.random.default_rng(0)
    words = ["red", "blue", "lamp", "vase", "mug", "acme", "nova", "mini", "set", "tall"]
    titles = [" ".join(rng.choice(words, size=3)) for _ in range(400)]
    categories = [str(c) for c in rng.choice(["home", "kitchen", "garden"], size=400)]
    prices = rng.uniform(5, 80, 400).tolist()
    m = content_matrix(titles, categories, prices)
    fresh = np.arange(100, 400)
    index = ContentIndex(m, fresh)
    seeds, weights = np.array([0, 5, 7]), np.array([1.0, 2.0, 0.5])
    allowed = rng.random(400) < 0.7
    profile = np.asarray(m[seeds].T @ weights).ravel()
    dense = (m[fresh] @ (profile / np.linalg.norm(profile))).ravel()
    for mask in (None, allowed):
        ok = (dense >= 0.2) & (True if mask is None else mask[fresh])
        cand = np.flatnonzero(ok)
        want = cand[np.argsort(-dense[cand], kind="stable")][:50]
        found, sims = index.matches(seeds, weights, n=50, allowed=mask)
        assert len(found) == len(want) > 10
        np.testing.assert_allclose(sims, dense[want], rtol=1e-5)
        np.testing.assert_array_equal(np.sort(found), np.sort(fresh[want]))


def test_round_trip_through_bytes_and_empty_index() -> None:
    index = ContentIndex(content_matrix(TITLES, CATEGORIES, PRICES), np.array([3, 4]))
    again = ContentIndex.from_bytes(index.to_bytes())
    assert (again.vectors != index.vectors).nnz == 0
    np.testing.assert_array_equal(again.fresh, index.fresh)
    empty = ContentIndex.from_bytes(ContentIndex.empty(6).to_bytes())
    assert len(empty.matches(np.array([0]), np.array([1.0]), 3)[0]) == 0


def test_reserved_slots_bring_the_best_fresh_entries_into_the_top_k() -> None:
    order = np.array([0, 1, 2, 3, 4, 5])  # best first
    fresh = np.array([False, False, False, False, True, True])
    np.testing.assert_array_equal(reserve_slots(order, fresh, 3, 0), [0, 1, 2])
    np.testing.assert_array_equal(reserve_slots(order, fresh, 3, 1), [0, 1, 4])
    np.testing.assert_array_equal(reserve_slots(order, fresh, 3, 2), [0, 4, 5])
    np.testing.assert_array_equal(reserve_slots(order, fresh, 3, 5), [0, 4, 5])  # only 2 fresh
    already = np.array([False, True, False, False, False, False])
    np.testing.assert_array_equal(reserve_slots(order, already, 3, 1), [0, 1, 2])
