"""Stage one's request-time search on a wide catalog: the scores kept per reached item and the
low-rank filter's scan (`LowRankFilter.top`) give the lists the catalog-wide arrays give."""

from __future__ import annotations

import numpy as np
import pytest

from shared.datasets import synthetic
from shared.ml.stage_one import search
from shared.ml.stage_one.index import LowRankFilter
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
    lowrank = model.index.lowrank
    if wide:
        mp.setattr(search, "DENSE_MAX_ITEMS", 0)
        if lowrank is not None:
            mp.setattr(lowrank, "scan_min_items", 0)
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


def steep_filter(n: int, rank: int, seed: int) -> LowRankFilter:
    """Columns whose lengths fall steeply, as a fitted filter's do (popular items hold the
    weight), so the scan stops early."""
    rng = np.random.default_rng(seed)
    left = rng.normal(size=(n, rank)).astype(np.float32)
    lengths = (1.0 / np.arange(1, n + 1)) [rng.permutation(n)]  # fmt: skip
    right = (rng.normal(size=(rank, n)) * lengths).astype(np.float32)
    return LowRankFilter(left, right, scan_min_items=0)


def best_k(f: LowRankFilter, query: np.ndarray, k: int, eligible: np.ndarray) -> set[int]:
    """The eligible items scoring at least the k-th best eligible score, by scoring them all."""
    scores = (query @ f.right).astype(np.float64)
    kth = np.sort(scores[eligible])[-k]
    return set(np.flatnonzero(eligible & (scores >= kth)).tolist())


@pytest.mark.parametrize("seed", range(4))
def test_scan_finds_every_item_of_the_best_k(seed: int) -> None:
    f = steep_filter(5000, 8, seed)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        query = f.query(rng.integers(0, 5000, 6), np.ones(6))
        skip = np.unique(rng.integers(0, 5000, 300))
        allowed = rng.random(5000) < 0.7 if seed % 2 else None
        eligible = np.ones(5000, dtype=bool)
        eligible[skip] = False
        if allowed is not None:
            eligible &= allowed
        k = int(rng.integers(1, 80))
        got = f.top(query, k, skip, allowed)
        assert best_k(f, query, k, eligible) <= set(got.tolist())  # none of the k best missed
        assert eligible[got].all()  # nothing skipped or filtered out comes back


def test_scan_reads_only_the_longest_columns() -> None:
    f = steep_filter(50_000, 8, 0)
    query = f.query(np.arange(5), np.ones(5))
    want = best_k(f, query, 50, np.ones(50_000, dtype=bool))
    order, rows, lengths = f._longest_first()
    # columns past the first quarter made unreadable: the scan must stop before them
    f._by_length = (order, np.where(np.arange(50_000)[:, None] < 12_500, rows, np.nan), lengths)
    got = f.top(query, 50, np.empty(0, dtype=np.int64), None)
    assert want <= set(got.tolist()) and len(got) == 50
