"""ALS as stage one's scorer (`FoldIn`): a trained user scored as the ALS baseline scores them;
the fold-in solve, for users with newer events, gives back the users ALS fitted."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp

from shared.datasets.base import Dataset
from shared.ml.baselines import ALS
from shared.ml.stage_one.fold_in import FoldIn
from shared.ml.stage_one.index import CandidateIndex, member_mask
from shared.ml.stage_one.search import generate_candidates
from shared.ml.stage_one.serving import CandidateStage, LiveEvent
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, stage_one

PARAMS = TrainParams(embedding_dim=4, graph_kind="als", als_factors=8)


@pytest.fixture
def model(blocks: Dataset) -> CandidateStage:
    end = float(blocks.interactions["ts"].max()) + 1
    return stage_one(blocks, build_catalog(blocks), end, PARAMS)


def test_fold_in_solves_the_users_als_fitted(model: CandidateStage) -> None:
    """With the items fixed, each user's vector is the one ALS's own user step finds: the
    fitted user factors, up to how far the alternation had converged (50 sweeps here)."""
    x = model.history.matrix(model.index.n_items)
    als = ALS(8, 0.05, 50, 10.0, seed=1)
    als.fit(x)
    f = FoldIn(als.item_factors, 0.05, 10.0, als.user_factors)
    for u in range(x.shape[0]):
        row = x[u]
        got = f.user_vector(row.indices, row.data)
        want = als.user_factors[u]
        assert np.linalg.norm(got - want) <= 0.02 * np.linalg.norm(want), u
    solved = f.batch_scores(np.full(5, -1), x[:5])  # -1: solve, never the stored vector
    stored = f.batch_scores(np.arange(5), x[:5])
    for u in range(5):
        np.testing.assert_allclose(solved[u], f.scores(-1, x[u].indices, x[u].data), rtol=1e-4)
        want = als.item_factors @ als.user_factors[u]
        # float32 products summed in another order: scores near 0 differ in the last places
        np.testing.assert_allclose(stored[u], want, rtol=1e-5, atol=1e-6)


def test_stage_one_scores_a_trained_user_as_the_als_baseline(model: CandidateStage) -> None:
    f = model.index.fold_in
    assert f is not None and model.index.lowrank is None
    user = model.catalog.users.get("U0")
    als = ALS(PARAMS.als_factors, seed=PARAMS.seed)  # the baseline, on the same data
    als.fit(model.history.matrix(model.index.n_items))
    expected = als.item_factors @ als.user_factors[user]
    c = model.positions(user, 10, (), None, True)
    np.testing.assert_allclose(c.scores, expected[c.items], rtol=1e-5)
    assert list(c.items) == sorted(c.items, key=lambda i: -expected[i])
    # U0 took block A's items: ALS proposes the rest of block A first
    block_a = set(model.catalog.items.positions([f"P{i}" for i in range(10)]).tolist())
    top = [i for i in c.items.tolist() if expected[i] > 0][:3]
    assert top and set(top) <= block_a


def test_a_live_event_moves_the_als_answer(model: CandidateStage) -> None:
    """Events since training enter the user's solve, weighted by type, as the graph's do."""
    user = model.catalog.users.get("U0")  # block A
    pos = model.catalog.items.positions
    block_a = set(pos([f"P{i}" for i in range(10)]).tolist())
    rest_of_b = set(pos([f"P{i}" for i in range(16, 20)]).tolist())
    before = model.positions(user, 10, (), None, True)
    assert set(before.items[:3].tolist()) <= block_a
    # six of block B's (now excluded), of a type weighing 10: log(11) each against log(2)
    live = [LiveEvent(f"P{i}", 10.0) for i in range(10, 16)]
    after = model.positions(user, 10, live, None, True)
    assert set(after.items[:3].tolist()) <= rest_of_b


def test_als_best_items_are_served_below_zero_too(model: CandidateStage) -> None:
    """ALS's scores go below zero: the served list takes its best items whatever their sign, as
    validation ranks them, not only the positive ones and then popularity. A block-A user asking
    for block B's category is the case where most scores are negative."""
    user = model.catalog.users.get("U0")  # block A
    als = ALS(PARAMS.als_factors, seed=PARAMS.seed)
    als.fit(model.history.matrix(model.index.n_items))
    expected = als.item_factors @ als.user_factors[user]
    block_b = model.catalog.items.positions([f"P{i}" for i in range(10, 20)])
    allowed = member_mask(block_b, model.index.n_items)
    ranked = block_b[np.argsort(-expected[block_b], kind="stable")].tolist()
    assert expected[ranked[5]] < 0  # the case under test
    c = model.positions(user, 8, (), allowed, True)
    assert c.items[: (3 * 8) // 4].tolist() == ranked[:6]  # stage one's share of the list


def test_als_items_nothing_else_explains_name_the_closest_history_item(
    model: CandidateStage,
) -> None:
    """An item ALS proposes that neither an embedding neighbour nor a graph row reaches is
    explained by the history item closest to it in ALS's factors (a positive inner product),
    not by `popular`."""
    f = model.index.fold_in
    assert f is not None
    n_items = model.index.n_items
    empty = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    # orthogonal embeddings and an empty graph: nothing but ALS reaches anything
    index = CandidateIndex(np.eye(n_items, dtype=np.float32), np.ones(n_items), empty, None, f)
    user = model.catalog.users.get("U0")
    history = model.history.indices[model.history.row(user)]
    block_b = model.catalog.items.positions([f"P{i}" for i in range(10, 20)])
    allowed = member_mask(block_b, n_items)
    c = generate_candidates(index, model.history, user, model.store.as_of, 8, allowed=allowed)
    proposed = c.items[: (3 * 8) // 4]
    affinity = f.factors[proposed] @ f.factors[history].T
    want = np.where(affinity.max(axis=1) > 0, history[np.argmax(affinity, axis=1)], -1)
    np.testing.assert_array_equal(c.seeds[: len(proposed)], want)
    assert (want >= 0).any()


def test_repeats_add_up_before_the_confidence_is_compressed(model: CandidateStage) -> None:
    """The fit weighs a pair's summed strength: an item twice at 1 is the item once at 2 (a live
    event on an item the user had), not two items' worth of confidence and preference."""
    f = model.index.fold_in
    assert f is not None
    once = f.user_vector(np.array([3, 5]), np.array([2.0, 1.0]))
    twice = f.user_vector(np.array([3, 5, 3]), np.array([1.0, 1.0, 1.0]))
    np.testing.assert_allclose(twice, once, rtol=1e-9)


def test_a_version_trained_before_the_log_confidence_solves_as_it_did(
    model: CandidateStage,
) -> None:
    """An index stored with two solve values (regularization, alpha) comes from before the
    log-scaled confidence: its users are solved with 1 + alpha * s, as its factors were fitted."""
    with np.load(io.BytesIO(model.index.to_bytes()), allow_pickle=False) as npz:
        arrays = dict(npz)
    assert arrays["als_solve"].tolist()[2:] == [1.0]
    arrays["als_solve"] = arrays["als_solve"][:2]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    old = CandidateIndex.from_bytes(buf.getvalue()).fold_in
    assert old is not None and not old.log_strengths
    items, strengths = np.array([3, 5]), np.array([4.0, 1.0])
    y = old.factors[items].astype(np.float64)
    extra = old.alpha * strengths  # raw, uncompressed
    want = np.linalg.solve(old.base + (y.T * extra) @ y, y.T @ (1.0 + extra))
    np.testing.assert_allclose(old.user_vector(items, strengths), want, rtol=1e-9)
    new = model.index.fold_in
    assert new is not None and not np.allclose(new.user_vector(items, strengths), want)
