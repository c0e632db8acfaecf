"""Exact and HNSW k-NN answer alike; the config switch picks HNSW inside the candidate stage."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import tests.shared.ml.stage_one.test_candidates as knn_contract
from services.candidate.app import ann_params, load_model
from shared.datasets import synthetic
from shared.datasets.base import Dataset
from shared.ml.stage_one.index import CandidateIndex
from shared.ml.stage_one.search import generate_candidates
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_one.vector_index import (
    AnnBackend,
    AnnParams,
    ExactIndex,
    HnswIndex,
    VectorIndex,
    build_vector_index,
)
from shared.settings import CommonSettings
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, stage_one

HNSW = AnnParams(backend="hnsw", min_items=0)


def planted_catalog(n: int = 2000, dim: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around `clusters` random centres (real item embeddings cluster too)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.7 * rng.standard_normal((n, dim))
    unit: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, e)) for a, e in zip(approx, exact, strict=True))
    return hits / exact.size


@pytest.fixture(scope="module")
def catalog() -> np.ndarray:
    return planted_catalog()


def test_hnsw_finds_what_exact_search_finds(catalog: np.ndarray) -> None:
    queries = catalog[np.random.default_rng(1).choice(len(catalog), 200, replace=False)]
    exact_ids, exact_sims = ExactIndex(catalog).search(queries, 10)
    ids, sims = HnswIndex(catalog, ef_search=64).search(queries, 10)
    assert ids.shape == sims.shape == (200, 10)
    assert ids.dtype == np.int64 and sims.dtype == np.float32
    assert recall(ids, exact_ids) >= 0.95
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # best first
    np.testing.assert_allclose(sims[:, 0], exact_sims[:, 0], atol=1e-5)  # each query finds itself
    # what it returns, it scores right
    np.testing.assert_allclose(
        sims, np.einsum("qd,qkd->qk", queries, catalog[ids]), rtol=0, atol=1e-5
    )


def test_exact_search_is_the_matrix_product(catalog: np.ndarray) -> None:
    queries = catalog[:5]
    ids, sims = ExactIndex(catalog).search(queries, 7)
    full = queries @ catalog.T
    np.testing.assert_array_equal(ids, np.argsort(-full, axis=1, kind="stable")[:, :7])
    np.testing.assert_allclose(sims, -np.sort(-full, axis=1)[:, :7], rtol=1e-6)


@pytest.mark.parametrize("backend", ["exact", "hnsw"])
def test_all_zero_vectors_never_outrank_real_neighbours(
    catalog: np.ndarray, backend: AnnBackend
) -> None:
    vectors = catalog[:300].copy()
    zero = np.arange(0, 300, 7)  # items nobody interacted with: all-zero embeddings
    vectors[zero] = 0.0
    index = build_vector_index(vectors, AnnParams(backend=backend, min_items=0))
    live = np.setdiff1d(np.arange(300), zero)
    ids, sims = index.search(vectors[live[:20]], 10)
    assert not np.isnan(sims).any()
    assert not np.isin(ids, zero).any()
    # asking for everything: every item once, the zero ones at similarity 0, nothing is NaN
    ids, sims = index.search(vectors[live[:3]], 1000)
    assert ids.shape == (3, 300)
    assert all(sorted(row) == list(range(300)) for row in ids.tolist())
    assert not np.isnan(sims).any()
    np.testing.assert_array_equal(sims[np.isin(ids, zero)], 0.0)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)
    # a zero query (a live event on an item with no embedding) has no neighbours worth a score
    _, sims = index.search(vectors[zero[:2]], 5)
    np.testing.assert_allclose(sims, 0.0, atol=1e-6)


def test_a_catalog_of_zero_vectors_only() -> None:
    index = HnswIndex(np.zeros((4, 8), dtype=np.float32))
    ids, sims = index.search(np.ones((2, 8), dtype=np.float32), 3)
    assert ids.shape == (2, 3) and set(ids.ravel().tolist()) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(sims, 0.0)


@pytest.mark.parametrize("make", [ExactIndex, HnswIndex])
def test_n_beyond_the_catalog_and_n_zero(
    catalog: np.ndarray, make: Callable[[np.ndarray], VectorIndex]
) -> None:
    index = make(catalog[:50])
    ids, sims = index.search(catalog[:2], 500)
    assert ids.shape == sims.shape == (2, 50)
    assert all(sorted(row) == list(range(50)) for row in ids.tolist())
    ids, sims = index.search(catalog[:2], 0)
    assert ids.shape == sims.shape == (2, 0)


def test_hnsw_with_a_beam_narrower_than_n(catalog: np.ndarray) -> None:
    index = HnswIndex(catalog, ef_search=10)
    ids, _ = index.search(catalog[:3], 200)  # the beam widens to n
    assert ids.shape == (3, 200) and all(len(set(row)) == 200 for row in ids.tolist())


def test_hnsw_is_deterministic(catalog: np.ndarray) -> None:
    queries = catalog[::97]
    first = HnswIndex(catalog, m=8, ef_construction=50, ef_search=20, seed=3).search(queries, 20)
    again = HnswIndex(catalog, m=8, ef_construction=50, ef_search=20, seed=3).search(queries, 20)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


def test_backend_choice_by_params_and_catalog_size(catalog: np.ndarray) -> None:
    assert isinstance(build_vector_index(catalog), ExactIndex)  # the default
    assert isinstance(build_vector_index(catalog, AnnParams()), ExactIndex)
    small = AnnParams(backend="hnsw", min_items=len(catalog) + 1)
    assert isinstance(build_vector_index(catalog, small), ExactIndex)  # too small for HNSW
    assert isinstance(build_vector_index(catalog, HNSW), HnswIndex)


def test_settings_choose_the_backend_inside_the_candidate_index(
    catalog: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = ann_params(CommonSettings())
    assert (default.backend, default.min_items) == ("hnsw", 50_000)  # for wide catalogs only
    monkeypatch.setenv("RECSYS_ANN_MIN_ITEMS", "1000")
    monkeypatch.setenv("RECSYS_ANN_EF_SEARCH", "77")
    params = ann_params(CommonSettings())
    assert (params.backend, params.min_items, params.ef_search) == ("hnsw", 1000, 77)

    index = CandidateIndex(catalog, np.ones(len(catalog)))
    assert isinstance(index.vectors, ExactIndex)  # as loaded from the artifact
    index.use_backend(params)
    assert isinstance(index.vectors, HnswIndex)
    assert index.vectors.ef_search == 77
    nbr, _ = index.similar(np.array([5, 9]), 10)
    assert nbr[:, 0].tolist() == [5, 9]

    small = CandidateIndex(catalog[:999], np.ones(999))
    small.use_backend(params)
    assert isinstance(small.vectors, ExactIndex)  # below ann_min_items exact search stays

    monkeypatch.setenv("RECSYS_ANN_BACKEND", "exact")  # HNSW off, whatever the width
    index.use_backend(ann_params(CommonSettings()))
    assert isinstance(index.vectors, ExactIndex)


def test_candidate_service_loads_models_with_the_configured_backend(
    blocks: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = knn_contract.TestKnnCandidates().make(blocks)
    monkeypatch.setattr(CandidateStage, "from_artifacts", classmethod(lambda cls, a: model))
    monkeypatch.setenv("RECSYS_ANN_BACKEND", "hnsw")
    monkeypatch.setenv("RECSYS_ANN_MIN_ITEMS", "0")
    loaded = load_model({}, ann_params(CommonSettings()))
    assert isinstance(loaded.index.vectors, HnswIndex)


class TestHnswCandidates(knn_contract.TestKnnCandidates):
    """The k-NN candidate stage with an HNSW index meets the same contract as with exact search."""

    def make(self, data: Dataset) -> CandidateStage:
        model = super().make(data)
        model.index.use_backend(HNSW)
        assert isinstance(model.index.vectors, HnswIndex)
        return model


def test_hnsw_candidates_match_exact_ones_on_a_trained_catalog() -> None:
    data = synthetic.generate(n_users=300, n_products=600, n_days=60, seed=7)
    end = float(data.interactions["ts"].max()) + 1
    model = stage_one(data, build_catalog(data), end, TrainParams(embedding_dim=16))
    exact = model.index
    approx = CandidateIndex(exact.embeddings, exact.popularity, exact.graph, exact.lowrank)
    approx.use_backend(AnnParams(backend="hnsw", min_items=0, m=8, ef_search=32))
    assert isinstance(approx.vectors, HnswIndex)
    overlaps = []
    for user in range(0, 300, 3):
        a, b = (
            generate_candidates(index, model.history, user, end, 50, per_seed=30)
            for index in (exact, approx)
        )
        overlaps.append(len(np.intersect1d(a.items, b.items)) / len(a.items))
    assert np.mean(overlaps) >= 0.95
