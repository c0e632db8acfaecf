"""The served ranker's member count and its clear-lift test over stage one alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.datasets import synthetic
from shared.ml.stage_two.model import RankingData
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, ranker_lists, stage_one_from
from shared.training.ranker_choice import CLEAR_LIFT_Z, MEMBERS, choose_members, lift_z
from shared.training.splits import temporal_split
from shared.training.validation import CandidateLists, make_validation, validation_splits

PARAMS = TrainParams(n_users=300, n_products=150, n_days=90)


def test_lift_z_is_a_paired_test_over_users() -> None:
    # mean 0.2, standard deviation 0.1414, standard error 0.1
    assert lift_z(np.array([0.1, 0.3])) == pytest.approx(2.0)
    assert lift_z(np.zeros(50)) == 0.0
    assert lift_z(np.full(50, 0.01)) == math.inf
    assert lift_z(np.full(50, -0.01)) == -math.inf
    assert lift_z(np.array([0.5])) == -math.inf  # one user: no evidence
    noise = np.random.default_rng(0).normal(0.0, 0.05, 1000)
    assert abs(lift_z(noise)) < CLEAR_LIFT_Z
    assert lift_z(noise + 0.01) > CLEAR_LIFT_Z


def test_the_number_of_averaged_rankers_is_chosen_on_validation() -> None:
    data = synthetic.generate(n_users=300, n_products=150, n_days=90)
    train = temporal_split(data, PARAMS.test_days).train
    catalog = build_catalog(data)
    v = make_validation(validation_splits(train, catalog, PARAMS, "temporal")[0], catalog, PARAMS)
    candidates = CandidateLists.build(stage_one_from(v.base, PARAMS), v, PARAMS.n_candidates)
    lists, valid = ranker_lists(v.split.train, catalog, PARAMS, "temporal")
    assert isinstance(lists, RankingData)
    count, scores, seconds, ranker = choose_members(lists, valid, candidates, v, PARAMS, math.inf)
    assert set(scores) == set(seconds) == set(MEMBERS)
    assert seconds[1] <= seconds[3] <= seconds[5]
    # the best count, and more members only where they score strictly higher
    assert scores[count] == max(scores.values())
    assert all(scores[m] < scores[count] for m in MEMBERS if m < count)
    # the ensemble returned is the one scored (what the ranker's lift is tested with)
    assert len(ranker.boosters) == count
    assert candidates.ndcg(v, ranker) == pytest.approx(scores[count], abs=1e-12)
    # members are seeded apart from the search's own fit (seed), whose score is a best of many
    seeds = [f"[seed: {PARAMS.seed + m}]" for m in range(1, count + 1)]
    assert [s for s in seeds if any(s in b.model_to_string() for b in ranker.boosters)] == seeds
    assert not any(f"[seed: {PARAMS.seed}]" in b.model_to_string() for b in ranker.boosters)
    # past the deadline only the first member is fitted
    count, scores, _, ranker = choose_members(lists, valid, candidates, v, PARAMS, -math.inf)
    assert count == 1 and set(scores) == {1} and len(ranker.boosters) == 1
