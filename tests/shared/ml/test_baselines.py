from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from shared.ml import top_lists
from shared.ml.baselines import ALS, EASE, ItemKNN, Popularity, Recommender, binarize
from shared.ml.top_lists import top_k

# Planted structure: group A (users 0-11) uses items 0-5, group B (users 12-19) uses items 6-11,
# items 12-13 are never used. Each user misses exactly one item of their block: the held-out one.
BLOCK = 6
N_A, N_B = 12, 8
N_USERS, N_ITEMS = N_A + N_B, 2 * BLOCK + 2


def _block(user: int) -> np.ndarray:
    return np.arange(BLOCK) if user < N_A else np.arange(BLOCK, 2 * BLOCK)


def held_out(user: int) -> int:
    return int(_block(user)[user % BLOCK])


def planted_train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for u in range(N_USERS):
        for i in _block(u):
            if i != held_out(u):
                rows.append(u)
                cols.append(int(i))
    # Varied strengths: binarizing models must ignore them, ALS uses them as confidence.
    vals = rng.integers(1, 4, size=len(rows)).astype(np.float32)
    return sp.csr_matrix((vals, (rows, cols)), shape=(N_USERS, N_ITEMS))


class RecommenderContract:
    """Behaviour every recommender must show. Subclass as `Test<Model>` and implement `make`."""

    def make(self) -> Recommender:
        raise NotImplementedError

    def fitted(self) -> Recommender:
        model = self.make()
        model.fit(planted_train())
        return model

    def test_planted_structure(self) -> None:
        """The held-out item of the user's own block outranks every item of the other block."""
        train = planted_train()
        model = self.fitted()
        recs = model.recommend(np.arange(N_USERS), N_ITEMS, train)
        for u in range(N_USERS):
            ranking = recs[u].tolist()
            other = np.arange(BLOCK, 2 * BLOCK) if u < N_A else np.arange(BLOCK)
            pos = ranking.index(held_out(u))
            assert all(pos < ranking.index(int(i)) for i in other), (u, ranking)

    def test_shape_and_item_range(self) -> None:
        recs = self.fitted().recommend(np.array([0, 5, 19, 12]), 3, planted_train())
        assert recs.shape == (4, 3)
        assert np.issubdtype(recs.dtype, np.integer)
        assert ((recs >= 0) & (recs < N_ITEMS)).all()

    def test_never_returns_excluded_items(self) -> None:
        model = self.fitted()
        # Exclusion comes from `exclude`, not from the training matrix: use a different mask.
        exclude = sp.random(N_USERS, N_ITEMS, density=0.4, random_state=1, format="csr")
        exclude.data[:] = 1.0
        users = np.arange(N_USERS)
        recs = model.recommend(users, 6, exclude)
        for u in users:
            assert not set(recs[u].tolist()) & set(exclude[u].indices.tolist()), u

    def test_no_duplicates_per_row(self) -> None:
        recs = self.fitted().recommend(np.arange(N_USERS), 8, planted_train())
        for row in recs:
            valid = row[row >= 0]
            assert len(set(valid.tolist())) == len(valid)

    def test_pads_with_minus_one_when_catalog_runs_out(self) -> None:
        train = planted_train()
        k = N_ITEMS + 3
        recs = self.fitted().recommend(np.arange(N_USERS), k, train)
        assert recs.shape == (N_USERS, k)
        for u, row in enumerate(recs):
            allowed = set(range(N_ITEMS)) - set(train[u].indices.tolist())
            n = len(allowed)
            assert set(row[:n].tolist()) == allowed  # every allowed item, before any padding
            assert (row[n:] == -1).all()

    def test_deterministic_across_fits(self) -> None:
        train = planted_train()
        users = np.arange(N_USERS)
        a, b = self.make(), self.make()
        a.fit(train)
        b.fit(train)
        first = a.recommend(users, 5, train)
        np.testing.assert_array_equal(first, b.recommend(users, 5, train))
        a.fit(train)  # refitting the same instance starts from scratch too
        np.testing.assert_array_equal(first, a.recommend(users, 5, train))

    def test_user_order_and_batching_do_not_matter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        train = planted_train()
        model = self.fitted()
        full = model.recommend(np.arange(N_USERS), 5, train)
        users = np.array([17, 3, 3, 0])
        np.testing.assert_array_equal(model.recommend(users, 5, train), full[users])
        monkeypatch.setattr(top_lists, "BATCH_USERS", 3)  # forces several blocks
        np.testing.assert_array_equal(model.recommend(np.arange(N_USERS), 5, train), full)
        monkeypatch.setattr(top_lists, "BATCH_USERS", 1024)
        monkeypatch.setattr(top_lists, "BLOCK_SCORES", 2 * train.shape[1])  # a wide catalog's
        assert top_lists.users_per_block(train.shape[1]) == 2
        np.testing.assert_array_equal(model.recommend(np.arange(N_USERS), 5, train), full)

    def test_recommend_before_fit_fails(self) -> None:
        with pytest.raises(RuntimeError, match="fit"):
            self.make().recommend(np.array([0]), 3, planted_train())


class TestPopularity(RecommenderContract):
    def make(self) -> Recommender:
        return Popularity()

    def test_planted_structure(self) -> None:
        """Popularity has no personal signal: instead, items come by distinct-user count."""
        # distinct users per item: [3, 1, 4, 2]; item 1's single user has a huge strength, which
        # must not count (that would make it the most popular by summed strength).
        dense = np.array([[1, 100, 1, 0], [1, 0, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0]])
        train = sp.csr_matrix(dense.astype(np.float32))
        model = Popularity()
        model.fit(train)
        empty = sp.csr_matrix((5, 4), dtype=np.float32)
        np.testing.assert_array_equal(model.recommend(np.array([4]), 4, empty), [[2, 0, 3, 1]])
        # the same order, minus what each user already has
        np.testing.assert_array_equal(
            model.recommend(np.array([3, 0]), 4, train), [[0, 3, 1, -1], [3, -1, -1, -1]]
        )

    def test_the_lists_scoring_every_item_would_give(self) -> None:
        """Its own head-of-the-order path: the same counts in the same order as `top_k` over
        every item's score, each tie at the cut going to the lower position."""
        rng = np.random.default_rng(3)
        train = sp.random(300, 80, density=0.08, random_state=4, format="csr")
        train.data[:] = 1.0
        excluded = sp.random(300, 80, density=0.3, random_state=5).toarray() != 0
        excluded[7] = True  # a user who excluded everything
        exclude = sp.csr_matrix(excluded.astype(np.float32))
        model = Popularity()
        model.fit(train)
        users = rng.permutation(300)
        for k in (1, 10, 100):
            ours = model.recommend(users, k, exclude)
            every = top_k(model._scores(users), k, exclude[users])
            assert ((ours == -1) == (every == -1)).all()
            counts = np.where(ours >= 0, model.counts[ours], -1)
            np.testing.assert_array_equal(counts, np.where(every >= 0, model.counts[every], -1))
            for row, c in zip(ours, counts, strict=True):
                ties = (c[1:] == c[:-1]) & (row[1:] >= 0)
                assert (row[1:][ties] > row[:-1][ties]).all()
            assert (ours[users == 7] == -1).all()


class TestItemKNN(RecommenderContract):
    def make(self) -> Recommender:
        return ItemKNN()


class TestEASE(RecommenderContract):
    def make(self) -> Recommender:
        return EASE()


class TestALS(RecommenderContract):
    def make(self) -> Recommender:
        # One factor per planted group. With more, ALS has the capacity to memorize this tiny
        # train set (its 12 distinct rows) and pushes the held-out cells towards 0 like any miss.
        return ALS(factors=2)


def test_ease_matches_hand_computed_3x3() -> None:
    # users x items:  [1 1 0] [0 1 1] [1 0 0]   (strength 5 is binarized to 1)
    train = sp.csr_matrix(np.array([[1, 5, 0], [0, 1, 1], [1, 0, 0]], dtype=np.float32))
    # G = X^T X = [[2 1 0] [1 2 1] [0 1 1]];  with l2 = 1:  G + I = [[3 1 0] [1 3 1] [0 1 2]]
    # det = 3(3*2 - 1*1) - 1(1*2 - 1*0) + 0 = 15 - 2 = 13
    # cofactors (symmetric): C00 = 5, C01 = -2, C02 = 1, C11 = 6, C12 = -3, C22 = 8
    # P = (G + I)^-1 = 1/13 [[5 -2 1] [-2 6 -3] [1 -3 8]]
    # B_ij = -P_ij / P_jj: column 0 / (5/13), column 1 / (6/13), column 2 / (8/13), diag = 0
    #   B01 = 2/6 = 1/3, B02 = -1/8, B10 = 2/5, B12 = 3/8, B20 = -1/5, B21 = 3/6 = 1/2
    expected = np.array([[0, 1 / 3, -1 / 8], [2 / 5, 0, 3 / 8], [-1 / 5, 1 / 2, 0]])
    model = EASE(l2=1.0)
    model.fit(train)
    np.testing.assert_allclose(model.item_weights, expected, rtol=1e-6, atol=1e-7)
    # user 2 has only item 0: scores = row 0 of B -> item 1 (1/3) beats item 2 (-1/8)
    empty = sp.csr_matrix((3, 3), dtype=np.float32)
    np.testing.assert_array_equal(model.recommend(np.array([2]), 3, empty), [[1, 0, 2]])


def test_ease_dropout_penalises_each_item_by_its_own_count() -> None:
    # The same X; G's diagonal is [2 2 1]. dropout 0.5: p / (1 - p) = 1, so the diagonal gets
    # l2 + G_jj: with l2 = 1, G + diag(1 + [2 2 1]) = [[5 1 0] [1 5 1] [0 1 3]] (EDLAE's form).
    train = sp.csr_matrix(np.array([[1, 5, 0], [0, 1, 1], [1, 0, 0]], dtype=np.float32))
    a = np.array([[5.0, 1, 0], [1, 5, 1], [0, 1, 3]])
    p = np.linalg.inv(a)
    expected = p / -np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    model = EASE(l2=1.0, dropout=0.5)
    model.fit(train)
    np.testing.assert_allclose(model.item_weights, expected, rtol=1e-6, atol=1e-7)
    plain = EASE(l2=1.0)
    plain.fit(train)
    # the penalty shrinks every weight: item 0 -> 1 was 1/3 without it
    assert 0 < model.item_weights[0, 1] < plain.item_weights[0, 1]
    with pytest.raises(ValueError, match="dropout"):
        EASE(dropout=1.0)


def test_item_knn_cosine_values() -> None:
    # users x items: [1 1 0] [1 1 1] [1 0 1] [0 0 1]  -> |U_0| = 3, |U_1| = 2, |U_2| = 3
    # co-occurrence: c01 = 2, c02 = 2, c12 = 1
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [3, 0, 1], [0, 0, 1]], dtype=np.float32))
    s01, s02, s12 = 2 / math.sqrt(3 * 2), 2 / math.sqrt(3 * 3), 1 / math.sqrt(2 * 3)
    model = ItemKNN(neighbours=10)
    model.fit(train)
    expected = np.array([[0, s01, s02], [s01, 0, s12], [s02, s12, 0]])  # no self-similarity
    np.testing.assert_allclose(model.similarity.toarray(), expected, rtol=1e-6)

    # shrink adds to the denominator: 2 / (sqrt(6) + 1) etc.
    shrunk = ItemKNN(neighbours=10, shrink=1.0)
    shrunk.fit(train)
    assert shrunk.similarity[0, 1] == pytest.approx(2 / (math.sqrt(6) + 1), rel=1e-6)
    assert shrunk.similarity[1, 2] == pytest.approx(1 / (math.sqrt(6) + 1), rel=1e-6)

    # neighbours=1 keeps each item's single most similar item: 0 -> 1 (0.816 > 0.667),
    # 1 -> 0 (0.816 > 0.408), 2 -> 0 (0.667 > 0.408)
    pruned = ItemKNN(neighbours=1)
    pruned.fit(train)
    expected_pruned = np.array([[0, s01, 0], [s01, 0, 0], [s02, 0, 0]])
    np.testing.assert_allclose(pruned.similarity.toarray(), expected_pruned, rtol=1e-6)
    assert pruned.similarity.nnz == 3  # sparse: pruned entries are not stored


def test_item_knn_dense_and_pair_blocks_keep_the_same_rows() -> None:
    """A block of rows is computed densely or from co-taken pairs, whichever is smaller: both
    keep each row's best positive similarities, on a tie the lower item position."""
    rng = np.random.default_rng(3)
    # few distinct counts: many ties at every cut
    x = binarize(sp.csr_matrix(rng.random((60, 40)) < 0.15, dtype=np.float64))
    model = ItemKNN(neighbours=4)
    xt, block = x.T.tocsr(), np.arange(40)
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    dense = model._dense_top((xt @ x).toarray(), block, norms, 4)
    pairs = model._sparse_top(xt @ x, block, norms, 4)
    for got in (dense, pairs):
        r, c, sim = got
        table = sp.csr_matrix((sim, (r, c)), shape=(40, 40)).toarray()
        for i in range(40):
            full = (xt[i] @ x).toarray().ravel() / (norms[i] * norms + 1e-300)
            full[i] = 0.0
            want = [j for j in np.argsort(-full, kind="stable")[:4] if full[j] > 0]
            assert sorted(np.flatnonzero(table[i]).tolist()) == sorted(want), i
            np.testing.assert_allclose(table[i, want], full[want])


def test_als_weighs_a_pair_by_the_log_of_its_strength(monkeypatch: pytest.MonkeyPatch) -> None:
    """Confidence 1 + alpha * log(1 + r) (Hu, Koren & Volinsky's log form): a pair taken 10,000
    times weighs ~12 x one taken once, not 10,000 x; the matrix implicit fits is that."""
    from implicit.cpu.als import AlternatingLeastSquares

    seen: list[sp.csr_matrix] = []
    fit = AlternatingLeastSquares.fit

    def spy(self: AlternatingLeastSquares, m: sp.csr_matrix, **kw: Any) -> None:
        seen.append(m.copy())
        fit(self, m, **kw)

    monkeypatch.setattr(AlternatingLeastSquares, "fit", spy)
    train = sp.csr_matrix(np.array([[1.0, 10_000.0, 0.0], [0.0, 2.0, 1.0]]))
    ALS(factors=2, alpha=10.0).fit(train)
    want = 1.0 + 10.0 * np.log1p(np.array([1.0, 10_000.0, 2.0, 1.0]))
    np.testing.assert_allclose(seen[0].data, want, rtol=1e-6)
