"""Behaviour every candidate generator must show, run against the k-NN stage."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.pipeline import build_catalog, stage_one
from shared.datasets.base import Dataset
from shared.ml.candidates import CandidateIndex
from shared.ml.model import CandidateModel
from shared.schemas import TrainParams


class CandidateGeneratorContract:
    """Subclass and implement `make` to hold another candidate generator to the same bar."""

    def make(self, data: Dataset) -> CandidateModel:
        raise NotImplementedError

    @pytest.fixture
    def model(self, blocks: Dataset) -> CandidateModel:
        return self.make(blocks)

    def test_candidates_follow_the_users_block(self, model: CandidateModel) -> None:
        for user in ("U0", "U1"):  # U0 is in group A (P0..P9), U1 in group B (P10..P19)
            block = (
                {f"P{i}" for i in range(10)} if user == "U0" else {f"P{i}" for i in range(10, 20)}
            )
            known, cands = model.candidates(user, 4)
            assert known
            similar = [c.product for c in cands if c.reason.startswith("similar_to:")]
            assert similar, "no candidate came from the user's history"
            assert set(similar) <= block

    def test_excludes_what_the_user_has_and_respects_n(self, model: CandidateModel) -> None:
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

    def test_scores_sorted_and_own_block_first(self, model: CandidateModel) -> None:
        _, cands = model.candidates("U0", 14)  # every item U0 does not have yet
        scores = [c.score for c in cands]
        assert scores == sorted(scores, reverse=True)
        own_block = {f"P{i}" for i in range(10)}
        assert {c.product for c in cands[:4]} <= own_block  # U0 has 6 of 10: 4 left, ranked first

    def test_unknown_user_gets_popular_items(self, model: CandidateModel) -> None:
        known, cands = model.candidates("stranger", 3)
        assert not known
        assert [c.reason for c in cands] == ["popular"] * 3
        assert cands[0].product == "P20"  # taken by everybody

    def test_round_trip_through_bytes(self, model: CandidateModel) -> None:
        again = CandidateIndex.from_bytes(model.index.to_bytes())
        np.testing.assert_array_equal(again.embeddings, model.index.embeddings)


class TestKnnCandidates(CandidateGeneratorContract):
    def make(self, data: Dataset) -> CandidateModel:
        end = float(data.interactions["ts"].max()) + 1
        return stage_one(data, build_catalog(data), end, TrainParams(embedding_dim=4))
