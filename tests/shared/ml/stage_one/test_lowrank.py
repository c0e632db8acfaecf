"""The low-rank filter added to the neighbour graph's scores (`lowrank_filter`)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from shared.datasets.base import Dataset
from shared.ml.baselines import binarize
from shared.ml.stage_one.index import CandidateIndex, LowRankFilter
from shared.ml.stage_one.serving import CandidateStage
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, stage_one

WEIGHT = 0.5


@pytest.fixture
def model(blocks: Dataset) -> CandidateStage:
    end = float(blocks.interactions["ts"].max()) + 1
    params = TrainParams(embedding_dim=4, graph_lowrank=2, graph_lowrank_weight=WEIGHT)
    return stage_one(blocks, build_catalog(blocks), end, params)


def dense_weights(f: LowRankFilter) -> np.ndarray:
    out: np.ndarray = f.left.astype(np.float64) @ f.right.astype(np.float64)
    return out


def test_weights_keep_to_the_planted_blocks(model: CandidateStage) -> None:
    assert model.index.lowrank is not None
    w = dense_weights(model.index.lowrank)
    pos = model.catalog.items.positions([f"P{i}" for i in range(20)])
    block_a, block_b = pos[:10], pos[10:]
    for own, other in ((block_a, block_b), (block_b, block_a)):
        # every item's weight to its own block beats its weight to the other block
        within = w[np.ix_(own, own)].min()
        across = w[np.ix_(own, other)].max()
        assert within > across


def test_scores_spread_as_widely_as_weight_times_the_graphs(model: CandidateStage) -> None:
    graph, lowrank = model.index.graph, model.index.lowrank
    assert graph is not None and lowrank is not None
    x = binarize(model.history.matrix(model.index.n_items))
    graph_spread = np.std((x @ graph).toarray())
    lowrank_spread = np.std(np.asarray(x @ dense_weights(lowrank)))
    assert lowrank_spread == pytest.approx(WEIGHT * graph_spread, rel=1e-4)


def test_candidate_scores_are_graph_plus_filter(model: CandidateStage) -> None:
    graph, lowrank = model.index.graph, model.index.lowrank
    assert graph is not None and lowrank is not None
    user = model.catalog.users.get("U0")
    x = binarize(model.history.matrix(model.index.n_items))
    expected = np.asarray(x[user] @ graph.toarray() + x[user] @ dense_weights(lowrank)).ravel()
    c = model.positions(user, 10, (), None, True)
    reached = c.scores != 0  # popularity top-ups carry no graph score
    assert reached.sum() >= 4
    np.testing.assert_allclose(c.scores[reached], expected[c.items[reached]], rtol=1e-5)


def test_factors_of_different_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        LowRankFilter(np.zeros((5, 2), np.float32), np.zeros((2, 4), np.float32))


def test_an_index_whose_filter_covers_other_items_is_refused(model: CandidateStage) -> None:
    lowrank = model.index.lowrank
    assert lowrank is not None
    short = LowRankFilter(lowrank.left[:-1], lowrank.right[:, :-1])  # one item fewer
    index = model.index.to_bytes()
    with np.load(io.BytesIO(index), allow_pickle=False) as npz:
        arrays = dict(npz)
    arrays["lowrank_left"], arrays["lowrank_right"] = short.left, short.right
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(ValueError, match="low-rank filter covers"):
        CandidateIndex.from_bytes(buf.getvalue())
