"""How the served ranker is chosen once its knobs are: how many members it averages, and whether
its lift over stage one alone is clear enough to serve it at all."""

from __future__ import annotations

import math
import time

import numpy as np

from shared.ml.catalog import Catalog
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_two.model import RankerEnsemble, RankingData
from shared.training.engines import ranker_fit
from shared.training.params import TrainParams
from shared.training.pipeline import LabelScheme, fit_ranker_on, ranker_lists, stage_one_from
from shared.training.validation import MAX_VALID_USERS, CandidateLists, Validation

# Ensemble sizes the search compares once the ranker's knobs are chosen.
MEMBERS = (1, 3, 5)
# The ranker is served only where its lift over stage one alone on validation is clear: the mean
# of the per-user NDCG@10 differences at least this many standard errors above zero (one-sided
# 95 %). A lift within noise was the ranker's best of many trials on one split, and undoing stage
# one on data nobody looked at costs more than a lift that small gains.
CLEAR_LIFT_Z = 1.645


def lift_z(lift: np.ndarray) -> float:
    """How many standard errors the mean of per-user differences `lift` is above zero (a paired
    test over users); 0 where every difference is zero, -inf with fewer than two users."""
    if len(lift) < 2:
        return -math.inf
    mean, se = float(np.mean(lift)), float(np.std(lift, ddof=1)) / math.sqrt(len(lift))
    if se == 0.0:
        return math.copysign(math.inf, mean) if mean else 0.0
    return mean / se


def choose_members(
    lists: RankingData,
    valid: RankingData,
    candidates: CandidateLists,
    v: Validation,
    recipe: TrainParams,
    deadline: float,
) -> tuple[int, dict[int, float], dict[int, float], RankerEnsemble]:
    """How many rankers the served model averages: members seeded apart are fitted one by one
    while the budget lasts, and the ensembles of MEMBERS' sizes are scored on validation; more
    members only where they score higher (each costs its share of every request's CPU). No
    member has the search's own seed: that fit's score is the best of many trials on these
    lists, luck of its seed included, and one member would win by it. Returns the count, the
    scores, the seconds each ensemble took to fit and the chosen ensemble."""
    fit = ranker_fit(recipe)
    fitted: list[RankerEnsemble] = []
    scores: dict[int, float] = {}
    seconds: dict[int, float] = {}
    start = time.monotonic()
    for m in range(1, max(MEMBERS) + 1):
        if m > 1 and time.monotonic() > deadline:
            break  # the first is always fitted: the count's choice needs its score
        fitted.append(fit(lists, valid, recipe.num_boost_round, recipe.seed + m))
        if m in MEMBERS:
            scores[m] = candidates.ndcg(v, RankerEnsemble.average(fitted))
            seconds[m] = round(time.monotonic() - start, 2)
    best = max(scores, key=lambda m: (scores[m], -m))  # on a tie, fewer members
    return best, scores, seconds, RankerEnsemble.average(fitted[:best])


def lift_on(
    v: Validation,
    catalog: Catalog,
    recipe: TrainParams,
    scheme: LabelScheme,
    stage: CandidateStage | None = None,
) -> np.ndarray | None:
    """Each of `v`'s users' NDCG@10 lift of `recipe`'s ranker over its stage one alone, with the
    lists built and the ranker fitted on `v`'s training part as the search did on its split: a
    fresh look at a lift, not the best of many trials. `stage`: `recipe`'s stage one on `v`,
    where the search fitted it already. None where `v` leaves the ranker nothing to learn
    from."""
    lists, valid = ranker_lists(v.split.train, catalog, recipe, scheme, max_users=MAX_VALID_USERS)
    if isinstance(lists, list) or not len(lists.groups):
        return None
    if lists.graded and not recipe.graded_labels:
        lists = lists.binary()
    if stage is None:
        stage = stage_one_from(v.base, recipe)
    candidates = CandidateLists.build(stage, v, recipe.n_candidates)
    try:
        ranker = fit_ranker_on(lists, valid, recipe)
    except ValueError:
        return None
    lift: np.ndarray = candidates.per_user(v, ranker) - candidates.per_user(v)
    return lift
