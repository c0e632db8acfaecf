"""Stage one's request-time search on a wide catalog: the scores kept per reached item and the
scorers' longest-first scans give the lists the catalog-wide arrays give."""

from __future__ import annotations

import numpy as np
import pytest

from shared.datasets import synthetic
from shared.ml.stage_one import longest_first
from shared.ml.stage_one.search import SearchResult, generate_candidates
from shared.ml.stage_one.serving import CandidateStage
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, stage_one

RECIPES = {
    "graph + low-rank filter": TrainParams(embedding_dim=8, graph_lowrank=8),
    "graph alone": TrainParams(embedding_dim=8, graph_lowrank=0),
    "ALS": TrainParams(embedding_dim=8, graph_kind="als", als_factors=8),
}


@pytest.fixture(scope="module", params=list(RECIPES))
def model(request: pytest.FixtureRequest) -> CandidateStage:
    data = synthetic.generate(n_users=120, n_products=400, n_days=60, seed=3)
    end = float(data.interactions["ts"].max()) + 1
    return stage_one(data, build_catalog(data), end, RECIPES[request.param])


def lists(model: CandidateStage, wide: bool, allowed: np.ndarray | None) -> list[SearchResult]:
    """Every user's 30 candidates (with a live event for every third user), through the path a
    wide catalog takes (`wide`) or the one a narrow catalog takes."""
    mp = pytest.MonkeyPatch()
    if wide:
        mp.setattr(longest_first, "WIDE_CATALOG", 0)
    try:
        out = []
        for user in range(len(model.catalog.users.ids)):
            live = np.array([user % model.index.n_items]) if user % 3 == 0 else None
            weights = np.array([2.0]) if live is not None else None
            out.append(
                generate_candidates(model.index, model.history, user, model.store.as_of, 30,
                                    live_items=live, live_weights=weights, allowed=allowed)
            )  # fmt: skip
        return out
    finally:
        mp.undo()


@pytest.mark.parametrize("filtered", [False, True])
def test_wide_path_gives_the_narrow_paths_lists(model: CandidateStage, filtered: bool) -> None:
    rng = np.random.default_rng(0)
    allowed = rng.random(model.index.n_items) < 0.5 if filtered else None
    narrow, wide = lists(model, False, allowed), lists(model, True, allowed)
    for a, b in zip(narrow, wide, strict=True):
        # the same items in the same order, the same scores (the filter's products over a subset
        # of columns may round differently in the last float32 bit), the same reasons
        assert a.items.tolist() == b.items.tolist()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-7)
        assert a.similarity.tolist() == b.similarity.tolist()
        assert a.seeds.tolist() == b.seeds.tolist()
    assert any(len(a.items) for a in narrow)
