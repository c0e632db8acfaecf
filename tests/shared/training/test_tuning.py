"""Training chooses its recipe on validation splits of the training data, within its budget."""

from __future__ import annotations

import math
import re

import numpy as np
import optuna
import pytest
import scipy.sparse as sp

from shared.datasets import synthetic
from shared.datasets.base import Dataset
from shared.ml.baselines import ALS, Recommender
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_two.features import COL, FEATURE_NAMES
from shared.ml.stage_two.model import RankerEnsemble
from shared.schemas.models import TuningReport
from shared.training import tuning, validation
from shared.training.comparison import tuning_line
from shared.training.evaluation import train_matrix
from shared.training.params import TrainParams
from shared.training.pipeline import StageOneBase, build_catalog, stage_one_from
from shared.training.ranker_choice import MEMBERS, lift_on
from shared.training.search_space import WarmStart, stage_one_space
from shared.training.splits import temporal_split
from shared.training.tuning import tune
from shared.training.validation import (
    MIN_VALID_USERS,
    CandidateLists,
    Validation,
    make_validation,
    validation_splits,
)

PARAMS = TrainParams(n_users=300, n_products=150, n_days=90, tune_budget_seconds=12)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return synthetic.generate(n_users=300, n_products=150, n_days=90)


def test_validation_splits_come_from_the_training_part_only(data: Dataset) -> None:
    test = temporal_split(data, PARAMS.test_days)
    cut = test.train.interactions["ts"].max()
    splits = validation_splits(test.train, build_catalog(data), PARAMS, "temporal")
    assert len(splits) == 2
    for s in splits:
        assert s.train.interactions["ts"].max() <= cut
        assert len(s.truth) >= MIN_VALID_USERS
    # the second split lies wholly before the first one's held-out window
    assert splits[1].train.interactions["ts"].max() < splits[0].train.interactions["ts"].max()


def test_a_validation_split_scores_a_seeded_sample_of_its_users(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validation, "MAX_VALID_USERS", 40)
    catalog = build_catalog(data)
    split = validation_splits(data, catalog, PARAMS, "temporal")[0]
    assert len(split.truth) > 40
    v = make_validation(split, catalog, PARAMS)
    assert len(v.users) == 40 and set(v.relevant) == set(v.users)
    assert make_validation(split, catalog, PARAMS).users == v.users


def test_tuning_searches_both_stages_and_reports_what_it_chose(data: Dataset) -> None:
    train = temporal_split(data, PARAMS.test_days).train
    lines: list[str] = []
    recipe, report = tune(train, build_catalog(data), PARAMS, "temporal", True, lines.append)
    assert report.note is None and report.n_splits == 2
    stages = {t.stage for t in report.trials if t.state == "complete"}
    assert stages == {"stage_one", "ranker"}
    # the time reported covers the trials it ran one after another (no timing target here:
    # the budget's effect on a whole training is measured in docs/benchmarks.md)
    searched = [t for t in report.trials if "ranker_models" not in t.params]
    assert 0 < sum(t.seconds for t in searched) <= report.spent_seconds + 0.01 * len(searched)
    # and where it went, phase by phase in the order they ran, adding up to it
    phases = report.phase_seconds
    assert list(phases)[:5] == [
        "validation splits",
        "stage-one search",
        "ranker lists",
        "ranker search",
        "ensemble size",
    ]
    assert {"baselines", "the choice"} <= set(phases) and min(phases.values()) >= 0
    assert sum(phases.values()) == pytest.approx(report.spent_seconds, abs=0.1 * len(phases))
    # the first trials are the defaults and the baselines stage one can become, each saying so
    first = report.trials[0]
    assert first.params["graph_kind"] == "ease" and first.params["graph_neighbours"] == 100
    assert [t.origin for t in report.trials[:4]] == ["defaults", "ease", "item_knn", "als"]
    counts = [t for t in report.trials if "ranker_models" in t.params]
    assert all(t.origin == "ensemble size" for t in counts)
    assert report.trials[2].params == {
        "graph_kind": "item_knn",
        "graph_neighbours": 100,
        "graph_lowrank": 0,
    }
    als = report.trials[3]
    assert als.params == {
        "graph_kind": "als",
        "graph_neighbours": 100,
        "als_factors": 64,
        "als_regularization": 0.05,
        "als_alpha": 10.0,
    }
    # what it chose is what the recipe says, and the served pipeline is the better of the two
    for key, value in report.chosen.items():
        assert getattr(recipe, key) == value
    scores = report.validation_ndcg
    assert {"two_stage", "stage_one", "popularity", "item_knn", "ease", "als"} <= scores.keys()
    assert report.decision == ("two_stage" if recipe.use_ranker else "stage_one")
    served = scores[report.decision]
    if report.decision == "two_stage":  # kept only where it lifts stage one
        assert served > scores["stage_one"]
    if "but not over every split" not in report.reason:  # else above it on both splits' mean
        assert served >= scores["ease"] - 1e-9 and served >= scores["item_knn"] - 1e-9
    assert lines and "tuning stage one" in lines[0]
    assert "validation: fitting ease …" in lines  # a user sees what the minutes go to
    # the demo data's events have grades (a purchase above a view): the ranker's trials say
    # which labels they learned from, the first the default (graded)
    ranker = [t for t in report.trials if t.stage == "ranker" and "ranker_models" not in t.params]
    assert ranker[0].params["graded_labels"] is True and ranker[0].origin == "defaults"
    assert all(t.origin is None for t in ranker[1:])  # drawn by the sampler
    assert all(isinstance(t.params["graded_labels"], bool) for t in ranker)


def test_a_retrain_tries_the_serving_versions_recipe_right_after_the_defaults(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe of the version serving on this data is each search's second trial, as the
    space uses it (knobs its kind of graph has no use for dropped); the defaults' own recipe is not
    tried twice."""
    monkeypatch.setattr(tuning, "MAX_TRIALS", 3)  # the defaults, the warm start and one more
    train = temporal_split(data, PARAMS.test_days).train
    catalog = build_catalog(data)
    served = PARAMS.model_copy(
        update={
            "graph_kind": "item_knn",
            "graph_neighbours": 50,
            "graph_lowrank": 16,
            "graph_lowrank_weight": 0.5,
            "graph_l2": 123.0,  # an EASE knob: an item-kNN graph has no use for it
            "ranker_leaves": 63,
            "ranker_prior_weight": 4.0,
            "num_boost_round": 100,
            "graded_labels": False,
        }
    )
    warm = WarmStart(7, served.model_dump(mode="json"))  # as the manifest records it
    _, report = tune(train, catalog, PARAMS, "temporal", True, warm=warm)
    one = [t for t in report.trials if t.stage == "stage_one"]
    assert [t.origin for t in one] == ["defaults", "version 7", "ease"]
    assert one[1].params == {
        "graph_kind": "item_knn",
        "graph_neighbours": 50,
        "graph_lowrank": 16,
        "graph_lowrank_weight": 0.5,
    }
    two = [t for t in report.trials if t.stage == "ranker" and "ranker_models" not in t.params]
    assert [t.origin for t in two] == ["defaults", "version 7", None]
    assert two[1].params == {
        "graded_labels": False,
        "ranker_prior_weight": 4.0,
        "ranker_leaves": 63,
        "num_boost_round": 100,
    }
    assert re.search(r"\(\d+ complete; version 7's recipe tried\) in", tuning_line(report))
    # the defaults' recipe, serving: nothing more to try than the defaults
    _, again = tune(
        train, catalog, PARAMS, "temporal", True, warm=WarmStart(7, PARAMS.model_dump())
    )
    assert "version 7" not in {t.origin for t in again.trials}
    assert "recipe tried" not in tuning_line(again)


def test_a_warm_start_takes_only_the_values_the_search_space_has() -> None:
    """A recipe recorded by an older search space (a choice since dropped, a range since
    narrowed, a flag stored as a number) gives the search only what a trial can take."""
    recipe = {
        "graph_kind": "item_knn",
        "graph_neighbours": 300,  # not one of the choices
        "graph_l2": 20000.0,  # out of range
        "graph_lowrank_weight": 1,  # in range, as an int
        "graph_title_labels": 1,  # a number where the choices are flags
        "ranker_leaves": 31,
        "extra": "ignored",
    }
    assert WarmStart(2, recipe).in_space() == {
        "graph_kind": "item_knn",
        "graph_lowrank_weight": 1.0,
        "ranker_leaves": 31,
    }
    # a knob the space needs with no value it can take: no trial is queued (not a failed one)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"graph_kind": "ease"}, user_attrs={"knobs": {}})
    study.optimize(lambda t: 0.0, n_trials=1)
    WarmStart(2, recipe).enqueue(
        study,
        lambda t: stage_one_space(t, synthetic.generate(50, 20, 10), PARAMS, True),
        study.trials[0],
    )
    assert len(study.trials) == 1


def test_stage_one_as_als_scores_as_the_als_baseline_on_every_split(data: Dataset) -> None:
    """The ALS trial the search starts with is the ALS baseline itself: what absorbing it means."""
    train = temporal_split(data, PARAMS.test_days).train
    catalog = build_catalog(data)
    recipe = PARAMS.model_copy(update={"graph_kind": "als"})
    for split in validation_splits(train, catalog, PARAMS, "temporal"):
        v = make_validation(split, catalog, PARAMS)
        as_stage_one = validation.stage_one_ndcg(stage_one_from(v.base, recipe), v)
        baseline = validation.baseline_ndcg(ALS(), v, train_matrix(v.split, catalog))
        assert as_stage_one == pytest.approx(baseline, abs=1e-9)


def test_knobs_the_request_set_are_not_searched(data: Dataset) -> None:
    params = TrainParams(tune_budget_seconds=6, graph_lowrank=0, ranker_leaves=7)
    _, report = tune(data, build_catalog(data), params, "temporal", True)
    ones = [t.params for t in report.trials if t.stage == "stage_one"]
    # ALS trials have no low-rank filter to set
    assert all(p.get("graph_lowrank", 0) == 0 for p in ones)
    assert all("graph_lowrank" in p for p in ones if p["graph_kind"] != "als")
    assert all(t.params["ranker_leaves"] == 7 for t in report.trials if t.stage == "ranker")
    binary = PARAMS.model_copy(update={"tune_budget_seconds": 6, "graded_labels": False})
    recipe, report = tune(data, build_catalog(data), binary, "temporal", True)
    assert recipe.graded_labels is False
    # lists built with 0/1 labels: nothing to choose, no trial learns from grades
    assert not any(t.params.get("graded_labels") for t in report.trials)


def test_the_search_records_member_counts_and_keeps_one_the_request_set(data: Dataset) -> None:
    train = temporal_split(data, PARAMS.test_days).train
    recipe, report = tune(train, build_catalog(data), PARAMS, "temporal", True)
    counted = [t for t in report.trials if "ranker_models" in t.params]
    assert all(t.stage == "ranker" and t.params["ranker_models"] in MEMBERS for t in counted)
    if recipe.use_ranker and recipe.ranker_models > 1:
        best = max(t.score or 0.0 for t in counted)
        assert best == pytest.approx(report.validation_ndcg["two_stage"], abs=1e-6)
    params = PARAMS.model_copy(update={"ranker_models": 2})
    fixed, again = tune(train, build_catalog(data), params, "temporal", True)
    assert fixed.ranker_models == 2
    assert not [t for t in again.trials if "ranker_models" in t.params]


def test_a_ranker_whose_lift_is_within_noise_steps_aside(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranker's best trial beats stage one on validation by less than the users' spread: stage
    one's order is served, and the report says why with the test's figure."""
    train = temporal_split(data, PARAMS.test_days).train
    monkeypatch.setattr(tuning, "CLEAR_LIFT_Z", math.inf)  # no lift is clear enough
    recipe, report = tune(train, build_catalog(data), PARAMS, "temporal", True)
    assert recipe.use_ranker is False and report.decision == "stage_one"
    assert "did not clearly beat stage one alone" in report.reason
    assert re.search(r"standard errors over (both splits' )?\d+ users.*, inf needed", report.reason)
    asked = PARAMS.model_copy(update={"use_ranker": True})  # the request's choice stands
    asked = TrainParams.model_validate(asked.model_dump(exclude_unset=True))
    recipe, report = tune(train, build_catalog(data), asked, "temporal", True)
    assert recipe.use_ranker is True and report.decision == "two_stage"
    assert report.reason.startswith("the request asks for the ranker")
    monkeypatch.setattr(tuning, "CLEAR_LIFT_Z", -math.inf)  # any ranker is kept
    recipe, report = tune(train, build_catalog(data), PARAMS, "temporal", True)
    if report.decision == "two_stage":  # unless a baseline stage one can become wins
        assert recipe.use_ranker and "standard errors over" in report.reason


def test_a_lift_short_of_clear_on_the_first_split_is_looked_at_again_on_the_second(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first split leaves the ranker's lift short of clear: a ranker fitted on the second
    split with the chosen knobs is tested there too, and the lifts of both splits' users decide
    together, where the second split lifts stage one at all."""
    train = temporal_split(data, PARAMS.test_days).train
    looked: list[int] = []

    def short_of_clear(lift: np.ndarray) -> float:
        return 1.0 if not looked else float(len(lift))  # the pooled lift: clear

    def second_split(sign: float) -> object:
        def lift(v: Validation, *_: object) -> np.ndarray:
            looked.append(len(v.users))
            return np.full(len(v.users), sign * 0.01)

        return lift

    monkeypatch.setattr(tuning, "lift_z", short_of_clear)
    monkeypatch.setattr(tuning, "lift_on", second_split(1.0))
    params = PARAMS.model_copy(update={"tune_budget_seconds": 6})
    lines: list[str] = []
    recipe, report = tune(train, build_catalog(data), params, "temporal", True, lines.append)
    assert len(looked) == 1 and "validation: the ranker on the second split …" in lines
    assert recipe.use_ranker is True and report.decision == "two_stage"
    assert re.search(r"standard errors over both splits' \d+ users\)", report.reason)
    looked.clear()
    monkeypatch.setattr(tuning, "lift_on", second_split(-1.0))  # no lift there: not counted
    recipe, report = tune(train, build_catalog(data), params, "temporal", True)
    assert len(looked) == 1 and recipe.use_ranker is False
    assert "1.0 standard errors over" in report.reason
    assert "users (the second split: no lift), 1.645 needed" in report.reason


def test_the_second_look_fits_the_chosen_ranker_on_that_split(data: Dataset) -> None:
    train = temporal_split(data, PARAMS.test_days).train
    catalog = build_catalog(data)
    splits = validation_splits(train, catalog, PARAMS, "temporal")
    v = make_validation(splits[1], catalog, PARAMS)
    lift = lift_on(v, catalog, PARAMS, "temporal")
    assert lift is not None and lift.shape == (len(v.users),) and np.isfinite(lift).all()
    assert lift.any()  # a fitted ranker re-orders some user's list
    assert (np.abs(lift) <= 1.0).all()  # differences of two NDCGs


def test_budget_zero_means_the_fixed_defaults(data: Dataset) -> None:
    params = TrainParams(tune_budget_seconds=0)
    recipe, report = tune(data, build_catalog(data), params, "temporal", True)
    assert recipe == params and report.trials == [] and report.note is not None
    assert "fixed defaults" in report.note


def test_a_budget_too_small_for_one_trial_means_the_fixed_defaults(data: Dataset) -> None:
    params = PARAMS.model_copy(update={"tune_budget_seconds": 0.001})
    recipe, report = tune(data, build_catalog(data), params, "temporal", True)
    assert recipe == params and report.trials == [] and report.note is not None
    assert report.note.startswith("the budget (0.001 s) ended before one trial did (the validation")
    assert report.note.endswith("s): the fixed defaults")
    assert tuning_line(report) == f"tuning: {report.note}"  # what `recsys evaluate` prints


def test_a_search_whose_every_trial_failed_keeps_the_defaults(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(base: StageOneBase, params: TrainParams) -> CandidateStage:
        raise ValueError("no stage one on this data")

    monkeypatch.setattr(tuning, "stage_one_from", refused)
    params = PARAMS.model_copy(update={"tune_budget_seconds": 2})
    recipe, report = tune(data, build_catalog(data), params, "temporal", True)
    assert recipe == params and report.trials == []
    assert report.note == "every trial failed (see the log): the fixed defaults"


def test_data_too_small_for_a_validation_split_keeps_the_defaults() -> None:
    tiny = synthetic.generate(n_users=20, n_products=30, n_days=60)
    params = TrainParams(tune_budget_seconds=30)
    recipe, report = tune(tiny, build_catalog(tiny), params, "temporal", True)
    assert recipe == params and report.note is not None
    assert "too little data" in report.note


def test_a_ranker_that_steps_aside_serves_stage_ones_order() -> None:
    ranker = RankerEnsemble(prior_weight=1.0)
    again = RankerEnsemble.from_text(ranker.to_text())
    assert again.boosters == [] and again.prior_weight == 1.0
    x = np.zeros((4, len(FEATURE_NAMES)))
    x[:, COL["cand_score_rel"]] = [1.0, 0.2, 0.7, -0.1]
    order = np.argsort(-again.score(x), kind="stable")
    assert order.tolist() == [0, 2, 1, 3]
    assert again.contributions(x).shape == (4, len(FEATURE_NAMES) + 1)


def test_past_the_graphs_limit_the_search_fits_ease_over_the_head_without_a_failed_trial(
    data: Dataset,
) -> None:
    params = TrainParams(tune_budget_seconds=5, graph_max_items=50)  # the demo catalog is bigger
    recipe, report = tune(data, build_catalog(data), params, "temporal", True)
    first = [t for t in report.trials if t.stage == "stage_one"]
    assert first and first[0].params["graph_kind"] == "ease"  # the defaults: EASE over the head
    assert first[0].state == "complete"
    assert not [t for t in report.trials if t.state == "failed"]
    assert "ease" in report.validation_ndcg  # the baseline: EASE over every item, as evaluated
    assert recipe.graph_kind in ("ease", "item_knn", "als")


def test_a_baseline_stage_one_can_become_that_still_wins_is_served(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the search ran out of budget before it met a stronger baseline (here: ALS made to
    score far above everything on validation, as a baseline and, once the search is over, as
    stage one), that baseline becomes stage one, served without a ranker fitted for other lists;
    a request that fixed the scorer keeps it, and is told."""
    real, real_stage_one = validation.baseline_ndcg, validation.stage_one_ndcg
    searched = []  # the baselines are scored once the searches are over

    def als_wins(model: Recommender, v: Validation, x: sp.csr_matrix) -> float:
        searched.append(True)
        return 0.99 if model.name == "als" else real(model, v, x)

    def as_stage_one_too(cm: CandidateStage, v: Validation) -> float:
        return 0.98 if searched and cm.index.fold_in is not None else real_stage_one(cm, v)

    monkeypatch.setattr(tuning, "baseline_ndcg", als_wins)
    monkeypatch.setattr(tuning, "stage_one_ndcg", as_stage_one_too)
    train = temporal_split(data, PARAMS.test_days).train
    recipe, report = tune(train, build_catalog(data), PARAMS, "temporal", True)
    assert recipe.graph_kind == "als" and recipe.use_ranker is False
    assert (recipe.als_factors, recipe.als_regularization, recipe.als_alpha) == (64, 0.05, 10.0)
    assert report.decision == "stage_one"
    assert report.reason.startswith("baseline als (0.9900) is above the pipeline")
    assert "stage one becomes als (0.9800 as stage one)" in report.reason
    fixed = PARAMS.model_copy(update={"graph_kind": "ease"})
    fixed = TrainParams.model_validate(fixed.model_dump(exclude_unset=True))
    recipe, report = tune(train, build_catalog(data), fixed, "temporal", True)
    assert recipe.graph_kind == "ease"
    assert "the request's own knobs keep it from becoming stage one" in report.reason


def test_a_baseline_that_loses_as_stage_one_does_not_replace_the_pipeline(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A baseline above the pipeline on validation whose stage-one form is not (a graph pruned to
    its neighbours, a candidate list, are not the baseline itself): the pipeline stays, and the
    reason gives both scores. Here ALS is made to score far above everything as a baseline only."""
    real = validation.baseline_ndcg

    def als_wins(model: Recommender, v: Validation, x: sp.csr_matrix) -> float:
        return 0.99 if model.name == "als" else real(model, v, x)

    monkeypatch.setattr(tuning, "baseline_ndcg", als_wins)
    train = temporal_split(data, PARAMS.test_days).train
    _, report = tune(train, build_catalog(data), PARAMS, "temporal", True)
    assert "als (0.9900) is above it on validation, but as stage one it scores" in report.reason
    assert "the pipeline stays" in report.reason


def test_a_baseline_above_stage_one_on_the_first_split_only_does_not_replace_it(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stage one was chosen on the mean of both validation splits: a baseline above it on the
    first split alone (here ALS, made to score 0.99 as a baseline and 0.5 as stage one there, 0
    as stage one on the second split) leaves stage one served, and the reason gives both means.
    Where it is above on the mean of both splits too, it becomes stage one."""
    real, real_stage_one = validation.baseline_ndcg, validation.stage_one_ndcg
    searched: list[Validation] = []  # the first split the baseline is scored on, once searched
    second = [0.0]  # stage one's score as ALS on the second split

    def als_wins(model: Recommender, v: Validation, x: sp.csr_matrix) -> float:
        searched.append(v)
        return 0.99 if model.name == "als" else real(model, v, x)

    def first_split_only(cm: CandidateStage, v: Validation) -> float:
        if searched and cm.index.fold_in is not None:
            return 0.5 if v is searched[0] else second[0]
        return real_stage_one(cm, v)

    monkeypatch.setattr(tuning, "baseline_ndcg", als_wins)
    monkeypatch.setattr(tuning, "stage_one_ndcg", first_split_only)
    monkeypatch.setattr(tuning, "CLEAR_LIFT_Z", math.inf)  # the ranker steps aside
    train = temporal_split(data, PARAMS.test_days).train
    params = PARAMS.model_copy(update={"tune_budget_seconds": 6})

    def searched_best(report: TuningReport) -> float:
        return max(t.score or 0.0 for t in report.trials if t.stage == "stage_one")

    recipe, report = tune(train, build_catalog(data), params, "temporal", True)
    chosen = searched_best(report)
    # the demo data's stage one scores between the two means on validation
    assert 0.25 < chosen < 0.5 and report.validation_ndcg["stage_one"] < 0.5
    assert report.n_splits == 2 and report.decision == "stage_one"
    assert recipe.graph_kind != "als" or recipe.graph_neighbours != 100  # not ALS's own recipe
    assert "als (0.9900; 0.5000 as stage one) is above it on the first validation split" in (
        report.reason
    )
    assert f"0.2500 as stage one against the search's {chosen:.4f} on the mean of the 2 splits" in (
        report.reason
    )
    assert report.reason.endswith("the pipeline stays")
    searched.clear()
    second[0] = 0.46  # above the search's best on the mean of both splits too
    recipe, report = tune(train, build_catalog(data), params, "temporal", True)
    assert recipe.graph_kind == "als" and recipe.use_ranker is False
    assert "stage one becomes als (0.5000 as stage one) and is served without the ranker" in (
        report.reason
    )
    assert (
        f"over every split: 0.4800 as stage one against the search's {searched_best(report):.4f} "
        "on the mean of the 2 splits; "
    ) in report.reason
    # what the ranker's test found is kept beside the baseline's win
    ranker = report.reason.split("; the ranker on the searched stage one: ")[1]
    assert re.fullmatch(r"\d\.\d{4} vs \d\.\d{4}, -?\d+\.\d standard errors over .+", ranker)


def test_ease_past_the_graphs_limit_that_wins_becomes_stage_one_over_every_item(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog wider than `graph_max_items` (the graph's EASE covers its head) but within
    EASE's dense limit: the EASE baseline is fitted over every item, and where it wins, stage one
    becomes EASE over every item too, not over the head the search tried."""
    real, real_stage_one, real_from = (
        validation.baseline_ndcg,
        validation.stage_one_ndcg,
        stage_one_from,
    )
    searched: list[bool] = []  # the baselines are scored once the searches are over
    built: list[TrainParams] = []  # the stage ones built after that

    def ease_wins(model: Recommender, v: Validation, x: sp.csr_matrix) -> float:
        searched.append(True)
        return 0.99 if model.name == "ease" else real(model, v, x)

    def recorded(base: StageOneBase, recipe: TrainParams) -> CandidateStage:
        if searched:
            built.append(recipe)
        return real_from(base, recipe)

    def as_stage_one_too(cm: CandidateStage, v: Validation) -> float:
        return 0.98 if searched else real_stage_one(cm, v)

    monkeypatch.setattr(tuning, "baseline_ndcg", ease_wins)
    monkeypatch.setattr(tuning, "stage_one_from", recorded)
    monkeypatch.setattr(tuning, "stage_one_ndcg", as_stage_one_too)
    train = temporal_split(data, PARAMS.test_days).train
    catalog = build_catalog(data)
    # as if the server's limit were 50: a request that sets the limit itself keeps it
    defaults = {**PARAMS.model_dump(), "graph_max_items": 50}
    params = TrainParams.model_construct(_fields_set={"tune_budget_seconds"}, **defaults)
    lines: list[str] = []
    recipe, report = tune(train, catalog, params, "temporal", True, lines.append)
    assert "validation: ease as stage one …" in lines
    n_items = len(catalog.items)
    # on the first split, and on the second too where the ranker stepped aside
    assert {(r.graph_kind, r.graph_max_items) for r in built} == {("ease", n_items)}
    assert (recipe.graph_kind, recipe.graph_max_items) == ("ease", n_items)
    assert recipe.use_ranker is False
    assert "stage one becomes ease (0.9800 as stage one)" in report.reason
    assert report.chosen["graph_max_items"] == n_items


def test_no_second_look_where_the_baseline_replaces_either_answer(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranker's lift is short of clear on the first split, but the best baseline (ALS, made
    to score 0.99 as a baseline and 0.98 as stage one on every split) is above both the ranker
    and stage one alone, over every split too: whatever a second look found, the baseline would
    replace it, so none is fitted. Where the baseline is above on the first split only, the
    second look still runs."""
    real, real_stage_one = validation.baseline_ndcg, validation.stage_one_ndcg
    searched: list[Validation] = []
    als = [0.98, 0.98]  # ALS as stage one on the first and the second split
    looked: list[int] = []

    def als_wins(model: Recommender, v: Validation, x: sp.csr_matrix) -> float:
        searched.append(v)
        return 0.99 if model.name == "als" else real(model, v, x)

    def as_stage_one(cm: CandidateStage, v: Validation) -> float:
        if searched and cm.index.fold_in is not None:
            return als[0] if v is searched[0] else als[1]
        return real_stage_one(cm, v)

    def second_split(v: Validation, *_: object) -> np.ndarray:
        looked.append(len(v.users))
        return np.full(len(v.users), -0.01)

    monkeypatch.setattr(tuning, "baseline_ndcg", als_wins)
    monkeypatch.setattr(tuning, "stage_one_ndcg", as_stage_one)
    monkeypatch.setattr(tuning, "lift_z", lambda lift: 1.0)  # short of clear on the first split
    monkeypatch.setattr(tuning, "lift_on", second_split)
    train = temporal_split(data, PARAMS.test_days).train
    params = PARAMS.model_copy(update={"tune_budget_seconds": 6})
    lines: list[str] = []
    recipe, report = tune(train, build_catalog(data), params, "temporal", True, lines.append)
    assert report.n_splits == 2 and not looked
    assert "validation: the ranker on the second split …" not in lines
    assert recipe.graph_kind == "als" and recipe.use_ranker is False
    assert report.reason.startswith("baseline als (0.9900) is above the pipeline")
    assert "over every split: 0.9800 as stage one against the search's" in report.reason
    assert "(no second look: als as stage one is above both)" in report.reason
    searched.clear()
    als[:] = [0.5, 0.0]  # above on the first split only (the mean 0.25): the second look decides
    recipe, report = tune(train, build_catalog(data), params, "temporal", True, lines.append)
    assert len(looked) == 1 and "no second look" not in report.reason
    assert recipe.graph_kind != "als" or recipe.graph_neighbours != 100  # not ALS's own recipe
    assert "(the second split: no lift)" in report.reason
    assert "but not over every split (0.2500 as stage one against the search's" in report.reason
    assert report.reason.endswith("the pipeline stays")


def test_the_ranker_is_tuned_and_looked_at_again_on_the_searchs_own_stage_ones(
    data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best trial's stage one, fitted on each split during the search, is what the ranker's
    candidates and its second look are built on: no stage one is fitted again after it."""
    real_from, real_build, real_lift_on = stage_one_from, CandidateLists.build, lift_on
    phase = ["search"]
    made: dict[str, list[CandidateStage]] = {"search": [], "after": []}
    built_on: list[CandidateStage] = []
    looked_on: list[CandidateStage | None] = []

    def recorded(base: StageOneBase, recipe: TrainParams) -> CandidateStage:
        made[phase[0]].append(real_from(base, recipe))
        return made[phase[0]][-1]

    def build(cm: CandidateStage, v: Validation, depth: int) -> CandidateLists:
        built_on.append(cm)
        return real_build(cm, v, depth)

    def second_look(*args: object) -> np.ndarray | None:
        looked_on.append(args[4] if len(args) > 4 else None)  # type: ignore[arg-type]
        return real_lift_on(*args)  # type: ignore[arg-type]

    def progress(line: str) -> None:
        if line == "tuning the ranker":
            phase[0] = "after"

    monkeypatch.setattr(tuning, "stage_one_from", recorded)
    monkeypatch.setattr(CandidateLists, "build", staticmethod(build))
    monkeypatch.setattr(tuning, "lift_on", second_look)
    monkeypatch.setattr(tuning, "lift_z", lambda lift: 1.0)  # short of clear: a second look
    monkeypatch.setattr(tuning, "baseline_ndcg", lambda *_: 0.0)  # no baseline replaces it
    train = temporal_split(data, PARAMS.test_days).train
    tune(train, build_catalog(data), PARAMS, "temporal", True, progress)
    assert made["after"] == []
    # the ranker's candidates on the first split, the second look's on the second
    assert len(built_on) == 2 and built_on[0] is not built_on[1]
    assert all(any(b is s for s in made["search"]) for b in built_on)
    assert looked_on == [built_on[1]]
