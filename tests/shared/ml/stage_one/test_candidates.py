"""Behaviour every candidate generator must show, run against the k-NN stage."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from shared.datasets.base import Dataset
from shared.live_catalog import LiveItem
from shared.ml.stage_one.index import CandidateIndex
from shared.ml.stage_one.search import _best_first, _strongest
from shared.ml.stage_one.serving import CandidateStage, LiveEvent
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, stage_one


class CandidateGeneratorContract:
    """Subclass and implement `make` to hold another candidate generator to the same bar."""

    def make(self, data: Dataset) -> CandidateStage:
        raise NotImplementedError

    @pytest.fixture
    def model(self, blocks: Dataset) -> CandidateStage:
        return self.make(blocks)

    def test_candidates_follow_the_users_block(self, model: CandidateStage) -> None:
        for user in ("U0", "U1"):  # U0 is in group A (P0..P9), U1 in group B (P10..P19)
            block = (
                {f"P{i}" for i in range(10)} if user == "U0" else {f"P{i}" for i in range(10, 20)}
            )
            known, cands = model.candidates(user, 4)
            assert known
            similar = [c.product for c in cands if c.reason.startswith("similar_to:")]
            assert similar, "no candidate came from the user's history"
            assert set(similar) <= block

    def test_excludes_what_the_user_has_and_respects_n(self, model: CandidateStage) -> None:
        seen = set(
            np.asarray(model.catalog.items.ids)[
                model.history.indices[model.history.row(model.catalog.users.get("U0"))]
            ]
        )
        for n in (1, 5, 14):
            _, cands = model.candidates("U0", n)
            assert len(cands) == n
            products = [c.product for c in cands]
            assert len(set(products)) == n
            assert not set(products) & seen

    def test_scores_sorted_and_own_block_first(self, model: CandidateStage) -> None:
        _, cands = model.candidates("U0", 14)  # every item U0 does not have yet
        scores = [c.score for c in cands]
        assert scores == sorted(scores, reverse=True)
        own_block = {f"P{i}" for i in range(10)}
        # U0 has 6 of 10: 4 left, ranked first
        assert {c.product for c in cands.head(4)} <= own_block

    def test_unknown_user_gets_popular_items(self, model: CandidateStage) -> None:
        known, cands = model.candidates("stranger", 3)
        assert not known
        assert [c.reason for c in cands] == ["popular"] * 3
        assert cands[0].product == "P20"  # taken by everybody

    def test_repeat_purchase_mode_proposes_what_the_user_has(self, model: CandidateStage) -> None:
        u0 = model.catalog.users.get("U0")
        seen = set(
            np.asarray(model.catalog.items.ids)[model.history.indices[model.history.row(u0)]]
        )
        _, again = model.candidates("U0", 14, exclude_history=False)
        assert {c.product for c in again} & seen  # a repeat-purchase shop shows them again

    def test_live_events_exclude_by_type(self, model: CandidateStage) -> None:
        for exclude in (True, False):
            event = LiveEvent("P11", 5.0, exclude)  # U0 (block A) suddenly looks at block B
            _, cands = model.candidates("U0", 14, [event])
            products = [c.product for c in cands]
            if exclude:
                assert "P11" not in products
            assert any(c.reason == "similar_to:P11" for c in cands)
            # a seed never recommends itself: if it comes back, another seed brought it
            assert all(c.reason != "similar_to:P11" for c in cands if c.product == "P11")

    def test_fresh_products_reached_by_content(self, model: CandidateStage) -> None:
        if not len(model.content.fresh):
            pytest.skip("this generator was built without fresh catalog items")
        fresh = set(np.asarray(model.catalog.items.ids)[model.content.fresh])
        for user, same_kind in (("U0", "a"), ("U1", "b")):
            _, cands = model.candidates(user, 10, fresh=2)
            new = [c for c in cands if c.reason == "cold_start"]
            assert new and len(cands) == 10
            assert {c.product for c in new} <= fresh
            cats = {model.catalog.categories[model.catalog.items.get(c.product)] for c in new}
            assert cats == {same_kind}
        _, none = model.candidates("U0", 10)  # fresh=0: the list is neighbours only
        assert all(c.reason != "cold_start" for c in none)

    def test_a_live_new_product_comes_before_catalog_items_nobody_took(
        self, model: CandidateStage
    ) -> None:
        """The shop added it since the version was trained: it takes the first cold-start place,
        catalog items nobody took yet the places left."""
        if not len(model.content.fresh):
            pytest.skip("this generator was built without fresh catalog items")
        _, before = model.candidates("U0", 10, fresh=1)
        old = [c.product for c in before if c.reason == "cold_start"]
        assert len(old) == 1  # the one place: a catalog item nobody took
        took = int(model.history.indices[model.history.row(model.catalog.users.get("U0"))][0])
        cat = model.catalog
        new = LiveItem(product="NEW-1", title=cat.titles[took], category=cat.categories[took])
        model.set_live({"NEW-1": new}, [], model.live_generation + 1)
        try:
            cold = {
                fresh: [c.product for c in model.candidates("U0", 10, fresh=fresh)[1]]
                for fresh in (1, 2)
            }
        finally:
            model.set_live({}, [], model.live_generation + 1)
        assert cold[1][-1:] == ["NEW-1"] and old[0] not in cold[1]
        assert cold[2][-2:] == ["NEW-1", old[0]]

    def test_round_trip_through_bytes(self, model: CandidateStage) -> None:
        index = model.index
        again = CandidateIndex.from_bytes(index.to_bytes())
        np.testing.assert_array_equal(again.embeddings, index.embeddings)
        assert (again.graph is None) == (index.graph is None)
        if index.graph is not None and again.graph is not None:
            assert (again.graph != index.graph).nnz == 0
        assert (again.lowrank is None) == (index.lowrank is None)
        if index.lowrank is not None and again.lowrank is not None:
            np.testing.assert_array_equal(again.lowrank.left, index.lowrank.left)
            np.testing.assert_array_equal(again.lowrank.right, index.lowrank.right)
        assert (again.fold_in is None) == (index.fold_in is None)
        if index.fold_in is not None and again.fold_in is not None:
            np.testing.assert_array_equal(again.fold_in.factors, index.fold_in.factors)
            assert again.fold_in.regularization == index.fold_in.regularization
            assert again.fold_in.alpha == index.fold_in.alpha
            assert again.fold_in.log_strengths == index.fold_in.log_strengths


def knn_stage(data: Dataset, params: TrainParams) -> CandidateStage:
    data = with_new_arrivals(data)
    end = float(data.interactions["ts"].max()) + 1
    return stage_one(data, build_catalog(data), end, params)


class TestKnnCandidates(CandidateGeneratorContract):
    def make(self, data: Dataset) -> CandidateStage:
        return knn_stage(data, TrainParams(embedding_dim=4, graph_lowrank=0))


class TestEmbeddingOnlyCandidates(CandidateGeneratorContract):
    def make(self, data: Dataset) -> CandidateStage:
        model = knn_stage(data, TrainParams(embedding_dim=4, graph_neighbours=0))
        assert model.index.graph is None and model.index.lowrank is None
        return model


class TestLowRankCandidates(CandidateGeneratorContract):
    def make(self, data: Dataset) -> CandidateStage:
        model = knn_stage(data, TrainParams(embedding_dim=4, graph_lowrank=2))
        assert model.index.lowrank is not None
        return model


class TestAlsCandidates(CandidateGeneratorContract):
    def make(self, data: Dataset) -> CandidateStage:
        # two factors for two blocks: with more, ALS's weak default L2 fits this tiny data's
        # noise (P9 among a block-B user's first four at 8 factors)
        model = knn_stage(data, TrainParams(embedding_dim=4, graph_kind="als", als_factors=2))
        assert model.index.fold_in is not None
        return model


def with_new_arrivals(data: Dataset) -> Dataset:
    """Two catalog items nobody took yet: one reads like block A (category a, its price range,
    'item' titles), one like block B."""
    new = pd.DataFrame(
        {
            "product_id": ["N1", "N2"],
            "title": ["item new", "item new arrival"],
            "category": ["a", "b"],
            "price": [10.0, 40.0],
        }
    )
    return replace(data, items=pd.concat([data.items, new], ignore_index=True))


def test_neighbour_table_answers_like_a_search() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(300, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    index = CandidateIndex(v, np.ones(300))
    seeds = np.array([0, 5, 299, 5])
    for n in (1, 50, 128, 200):  # 200 is wider than the table: searched directly
        ids, sims = index.similar(seeds, n)
        want_ids, want_sims = index.vectors.search(v[seeds], n)
        np.testing.assert_array_equal(ids, want_ids)
        # float32 sums in another order: a few units in the last place (the CPU's kernels)
        np.testing.assert_allclose(sims, want_sims, rtol=1e-6)
    assert index.neighbour_table()[0].shape == (300, 128)


@pytest.mark.parametrize("k", [0, 1, 7, 50, 99, 100, 150])
def test_best_first_is_a_stable_sorts_head(k: int) -> None:
    rng = np.random.default_rng(k)
    items = np.sort(rng.choice(1000, size=100, replace=False))
    values = rng.integers(0, 6, size=100).astype(np.float64)  # many ties, some at every cut
    want = items[np.argsort(-values, kind="stable")][:k]
    np.testing.assert_array_equal(_best_first(items, values, k), want)


@pytest.mark.parametrize("n", [0, 1, 5, 40, 500])
def test_popular_top_up_reads_the_order_head_like_a_full_mask(n: int) -> None:
    rng = np.random.default_rng(n)
    index = CandidateIndex(np.eye(300, 8, dtype=np.float32), rng.integers(0, 20, 300) / 3.0)
    exclude = rng.choice(300, size=30, replace=False)
    for allowed in (None, rng.random(300) < 0.05, np.zeros(300, dtype=bool)):
        mask = np.ones(300, dtype=bool)
        mask[exclude] = False
        if allowed is not None:
            mask &= allowed
        order = np.argsort(-index.popularity, kind="stable")
        want = order[mask[order]][:n]
        np.testing.assert_array_equal(index.popular(n, exclude, allowed), want)


@pytest.mark.parametrize("k", [1, 150, 512, 3000])
def test_best_first_of_a_catalog_long_list_is_the_stable_sorts_head(k: int) -> None:
    """Past a few thousand values a sampled floor drops what cannot make the top k first."""
    rng = np.random.default_rng(k)
    items = np.sort(rng.choice(200_000, size=60_000, replace=False))
    values = np.round(rng.exponential(size=60_000), 2)  # ties at every cut
    want = items[np.argsort(-values, kind="stable")][:k]
    np.testing.assert_array_equal(_best_first(items, values, k), want)


@pytest.mark.parametrize("width", [50, 100_000])  # entries dense in the catalog, or sparse
def test_strongest_seed_is_the_largest_value_lowest_row(width: int) -> None:
    rng = np.random.default_rng(width)
    items = rng.integers(0, 50, size=2000)
    values = np.round(rng.random(2000), 1)  # ties
    rows = rng.integers(0, 20, size=2000)
    seeds = np.arange(100, 120)
    found, best = _strongest(width, items, values, rows, seeds)
    assert found.tolist() == sorted(set(items.tolist()))  # each item once, ascending
    for item, seed in zip(found.tolist(), best.tolist(), strict=True):
        at = np.flatnonzero(items == item)
        top = values[at].max()
        assert seed == seeds[rows[at][values[at] == top].min()]
