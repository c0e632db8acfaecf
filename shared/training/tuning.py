"""Training chooses its own recipe: Optuna searches stage one's and the ranker's knobs on
validation splits carved from the training data only (never the test split), within a budget.

Two searches, cheapest first:
1. stage one's knobs (graph kind, neighbours, L2, low-rank filter, sessions, label weights), each
   trial scored by the candidate list's own NDCG@10 on up to two validation splits (a trial bad
   on the first is pruned). The baselines stage one can become are tried first (EASE unpruned,
   item-kNN, ALS), so the chosen stage one is at least as good as they are on validation.
2. the ranker's knobs (graded or 0/1 labels, prior weight, leaves, rounds, members) on lists
   built once for the chosen stage one, each trial scored by the two-stage NDCG@10 on the first
   validation split.
Then the served pipeline is chosen against its baselines on the same split: where the ranker does
not clearly beat stage one alone (a paired test over the validation users; where the first split
leaves a lift unclear, over the second split's users too, unless the best baseline replaces
either answer), it steps aside (`use_ranker` off); a baseline above stage one alone there
replaces it only where it is above on the mean of every split too, as the search compared
them. The report says what won and why.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
import optuna

from shared.datasets.base import Dataset
from shared.ml.catalog import Catalog
from shared.ml.memory import ModelTooLarge
from shared.ml.stage_one.serving import CandidateStage
from shared.ml.stage_two.model import RankerEnsemble, RankingData
from shared.schemas.models import Knob, TuningReport, TuningTrial
from shared.training.evaluation import baselines, train_matrix
from shared.training.params import TrainParams
from shared.training.pipeline import (
    LabelScheme,
    fit_ranker_on,
    ranker_lists,
    stage_one_from,
)
from shared.training.ranker_choice import CLEAR_LIFT_Z, MEMBERS, choose_members, lift_on, lift_z
from shared.training.search_space import (
    ABSORBED,
    DEFAULT_KNOBS,
    WarmStart,
    ranker_space,
    stage_one_space,
    with_knobs,
)
from shared.training.tuning_report import Phases, fixed, ran, search_report, trial_record
from shared.training.validation import (
    MAX_VALID_USERS,
    MIN_VALID_USERS,
    CandidateLists,
    baseline_ndcg,
    make_validation,
    stage_one_ndcg,
    validation_splits,
)

log = logging.getLogger(__name__)


# Share of the budget the stage-one search may use; the ranker's search gets the rest.
STAGE_ONE_SHARE = 0.5
MAX_TRIALS = 60  # per search: past this, small data has been searched enough


def tune(
    data: Dataset,
    catalog: Catalog,
    params: TrainParams,
    scheme: LabelScheme,
    has_time: bool,
    progress: Callable[[str], None] = lambda line: None,
    warm: WarmStart | None = None,
) -> tuple[TrainParams, TuningReport]:
    """The recipe chosen on validation splits of `data` within `params.tune_budget_seconds`, and
    the report of how. `data` must be training data only: the caller's test split stays out.
    `warm`: a recipe each search tries right after its defaults."""
    budget = params.tune_budget_seconds
    if budget <= 0:
        return fixed(params, budget, "tune_budget_seconds is 0: the fixed defaults")
    start = time.monotonic()
    splits = validation_splits(data, catalog, params, scheme)
    if not splits:
        return fixed(
            params, budget, f"too little data for a validation split (< {MIN_VALID_USERS} users)"
        )
    validations = [make_validation(s, catalog, params) for s in splits]
    deadline = start + budget
    phases = Phases(start)
    phases.end("validation splits")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    # 1. stage one
    # the best trial's stage one fitted on each split, kept: the ranker's candidates and its
    # second look are built on these, not fitted again (a fit costs tens of seconds on a wide
    # catalog)
    best_stages: list[CandidateStage] = []
    best_number, best_score = -1, -math.inf  # the trial they are of, and its score

    def objective_one(trial: optuna.Trial) -> float:
        nonlocal best_number, best_score
        knobs = stage_one_space(trial, data, params, has_time)
        trial.set_user_attr("knobs", knobs)
        recipe = with_knobs(params, knobs)
        scores, stages = [], []
        for i, v in enumerate(validations):
            stages.append(stage_one_from(v.base, recipe))
            scores.append(stage_one_ndcg(stages[-1], v))
            trial.report(float(np.mean(scores)), i)
            if i + 1 < len(validations) and trial.should_prune():
                raise optuna.TrialPruned()
        score = float(np.mean(scores))
        if best_number < 0 or score > best_score:  # the first of equals, as chosen below
            best_number, best_score, best_stages[:] = trial.number, score, stages
        return score

    one = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=params.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    dense_fits = len(catalog.items) <= params.graph_max_items
    defaults = {k: getattr(params, k) for k in DEFAULT_KNOBS}
    one.enqueue_trial(defaults, user_attrs={"origin": "defaults"})
    progress(f"tuning stage one ({len(validations)} validation splits)")
    failures = (ModelTooLarge, ValueError, np.linalg.LinAlgError)
    one.optimize(objective_one, n_trials=1, catch=failures)  # the defaults
    if warm is not None:
        warm.enqueue(one, lambda t: stage_one_space(t, data, params, has_time), one.trials[0])
    # the baselines stage one can become, as its scorer (unpruned EASE: within the graph's limit)
    for name, knobs in ABSORBED.items():
        if name != "ease" or dense_fits:
            one.enqueue_trial(knobs, user_attrs={"origin": name}, skip_if_exists=True)
    if time.monotonic() > deadline:
        # too small a budget for one trial: nothing is chosen on a search that never was
        spent = time.monotonic() - start
        return fixed(
            params,
            budget,
            f"the budget ({budget:g} s) ended before one trial did (the validation splits and "
            f"the first trial took {spent:.1f} s): the fixed defaults",
        )
    left = start + STAGE_ONE_SHARE * budget - time.monotonic()
    if left > 0:
        one.optimize(objective_one, n_trials=MAX_TRIALS - 1, timeout=left, catch=failures)
    completed = [t for t in one.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return fixed(params, budget, "every trial failed (see the log): the fixed defaults")
    best_one = max(completed, key=lambda t: t.value or -math.inf)
    recipe = with_knobs(params, best_one.user_attrs["knobs"])
    trials = [trial_record(t, "stage_one") for t in one.trials if ran(t)]
    fitted = best_stages if best_number == best_one.number else []
    phases.end("stage-one search")

    # 2. the ranker, on lists built once for the chosen stage one (first validation split)
    v = validations[0]
    progress("tuning the ranker")
    cm = fitted[0] if fitted else stage_one_from(v.base, recipe)
    candidates = CandidateLists.build(cm, v, recipe.n_candidates)
    stage_one_users = candidates.per_user(v)  # the ranker's lift is tested against these
    stage_one_alone = float(np.mean(stage_one_users))
    lists, valid = ranker_lists(v.split.train, catalog, recipe, scheme, max_users=MAX_VALID_USERS)
    phases.end("ranker lists")
    if isinstance(lists, list):  # the Dask engine's lists stay on the cluster: no search
        dask = search_report(params, recipe, trials, phases, validations, {}, "two_stage", "dask")
        return recipe, dask

    scored: dict[tuple[tuple[str, Knob], ...], float] = {}  # TPE proposes a recipe again, often
    best_fit: list[tuple[float, RankerEnsemble]] = []  # the best ranker yet, and its score
    graded = lists.graded  # else graded and 0/1 labels are the same lists: nothing to choose
    binary = lists.binary() if graded else lists

    def labelled(r: TrainParams) -> RankingData:
        return lists if r.graded_labels else binary

    def objective_two(trial: optuna.Trial) -> float:
        knobs = ranker_space(trial, params, graded)
        trial.set_user_attr("knobs", knobs)
        key = tuple(sorted(knobs.items()))
        if key not in scored:
            # One member per trial: the members' mean is as good or better, at a multiple of
            # the time.
            r = with_knobs(recipe, {**knobs, "ranker_models": 1})
            ranker = fit_ranker_on(labelled(r), valid, r)
            scored[key] = candidates.ndcg(v, ranker)
            if not best_fit or scored[key] > best_fit[0][0]:
                best_fit[:] = [(scored[key], ranker)]
        return scored[key]

    two = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=params.seed)
    )
    two.enqueue_trial(
        {
            "graded_labels": params.graded_labels,
            "ranker_prior_weight": params.ranker_prior_weight,
            "ranker_leaves": params.ranker_leaves,
            "num_boost_round": params.num_boost_round,
        },
        user_attrs={"origin": "defaults"},
    )
    if len(lists.groups):
        # The first trial (the defaults) runs even past the budget: the choice between the ranker
        # and stage one alone below needs one ranker's validation score.
        first_fit = time.monotonic()
        two.optimize(objective_two, n_trials=1, catch=(ValueError,))
        if warm is not None:
            warm.enqueue(two, lambda t: ranker_space(t, params, graded), two.trials[0])
        # time kept back for the members' count: as many fits again as the largest count adds
        members_time = 0.0
        if "ranker_models" not in params.model_fields_set:
            members_time = (max(MEMBERS) - 1) * (time.monotonic() - first_fit)
        left = deadline - time.monotonic() - members_time
        if left > 0:
            two.optimize(objective_two, n_trials=MAX_TRIALS - 1, timeout=left, catch=(ValueError,))
    trials += [trial_record(t, "ranker") for t in two.trials if ran(t)]
    phases.end("ranker search")
    done = [t for t in two.trials if t.state == optuna.trial.TrialState.COMPLETE]
    two_stage = -math.inf
    served_ranker: RankerEnsemble | None = None
    if done:
        best_two = max(done, key=lambda t: t.value or -math.inf)
        two_stage = float(best_two.value or -math.inf)
        served_ranker = best_fit[0][1]
        recipe = with_knobs(recipe, best_two.user_attrs["knobs"])
        count_open = "ranker_models" not in params.model_fields_set  # else the request's stands
        if count_open and time.monotonic() >= deadline:
            # no time left to see whether more members help: one (the cheapest to fit and serve)
            recipe = with_knobs(recipe, {"ranker_models": 1})
        elif count_open:
            members, scores_by_count, seconds, served_ranker = choose_members(
                labelled(recipe), valid, candidates, v, recipe, deadline
            )
            recipe = with_knobs(recipe, {"ranker_models": members})
            two_stage = scores_by_count[members]
            trials += [
                TuningTrial(
                    number=len(two.trials) + i,
                    stage="ranker",
                    params={**best_two.user_attrs["knobs"], "ranker_models": m},
                    score=score,
                    state="complete",
                    seconds=seconds[m],
                    origin="ensemble size",
                )
                for i, (m, score) in enumerate(scores_by_count.items())
                if m > 1
            ]
            phases.end("ensemble size")

    # 3. the served pipeline against its baselines, on the same split
    scores = {"two_stage": two_stage, "stage_one": stage_one_alone}
    x = train_matrix(v.split, catalog)  # once for every baseline
    for model in baselines():  # the evaluation's: EASE up to its own dense limit
        progress(f"validation: fitting {model.name} …")  # minutes for EASE over 10k+ items
        try:
            scores[model.name] = baseline_ndcg(model, v, x)
        except ModelTooLarge as exc:
            log.info("tuning: baseline %s skipped: %s", model.name, exc)
    phases.end("baselines")
    # The best baseline, and the recipe with stage one become it (the request's own knobs kept).
    others = {n: s for n, s in scores.items() if n not in ("two_stage", "stage_one")}
    best = max(others, key=lambda n: others[n]) if others else ""
    switch = {**ABSORBED.get(best, {}), "use_ranker": False}
    if best == "ease" and len(catalog.items) > params.graph_max_items:
        # the baseline is EASE over the whole catalog (up to its dense limit): stage one's, over
        # the head of a bigger catalog only, becomes that too
        switch["graph_max_items"] = len(catalog.items)
    kept = best in ABSORBED and any(
        k in params.model_fields_set and getattr(params, k) != v for k, v in switch.items()
    )
    as_best, chosen = with_knobs(recipe, switch), float(best_one.value or -math.inf)
    on_split: dict[int, float] = {}  # that stage one's score per split: each fitted once

    def as_stage_one(i: int) -> float:
        if i not in on_split:
            if i == 0:
                progress(f"validation: {best} as stage one …")
            w = validations[i]
            on_split[i] = stage_one_ndcg(stage_one_from(w.base, as_best), w)
        return on_split[i]

    def replaces(served: float) -> bool:
        """The baseline, as stage one, above `served` on the first split (and not just as a
        baseline: a graph pruned to its neighbours may not keep all the baseline has)."""
        return (
            bool(others)
            and others[best] > served
            and best in ABSORBED
            and not kept
            and (as_stage_one(0) > served)
        )

    def over_every_split() -> float:
        return float(np.mean([as_stage_one(i) for i in range(len(validations))]))

    z, over = -math.inf, f"over {len(v.users)} users"
    asked = "use_ranker" in params.model_fields_set and params.use_ranker and done
    if served_ranker is not None:
        lift = candidates.per_user(v, served_ranker) - stage_one_users
        z = lift_z(lift)
        contested = 0 < z < CLEAR_LIFT_Z and len(validations) > 1 and not asked
        if contested and replaces(max(two_stage, stage_one_alone)) and over_every_split() > chosen:
            # the baseline replaces whichever the second look would choose: no need to look
            over += f" (no second look: {best} as stage one is above both)"
        elif contested:
            # A lift short of clear on the first split's users: the second split is a fresh look
            # (a ranker fitted there with the chosen knobs) and more users to test it over; it
            # counts only where it lifts stage one there too.
            progress("validation: the ranker on the second split …")
            again = fitted[1] if len(fitted) > 1 else None
            phases.end("the choice")
            more = lift_on(validations[1], catalog, recipe, scheme, again)
            phases.end("second look")
            if more is not None and float(np.mean(more)) > 0:
                z, over = (
                    lift_z(np.concatenate([lift, more])),
                    f"over both splits' {len(lift) + len(more)} users",
                )
            elif more is not None:
                over += " (the second split: no lift)"
    versus = f"{two_stage:.4f} vs {stage_one_alone:.4f}"
    shown = f"{z:.1f}" if math.isfinite(z) else "no"
    if z >= CLEAR_LIFT_Z:
        decision, served = "two_stage", two_stage
        why = f"the ranker lifts stage one on validation ({versus}, {z:.1f} standard errors {over})"
    elif asked:
        decision, served = "two_stage", two_stage
        why = (
            f"the request asks for the ranker: served, though its lift on validation is not "
            f"clear ({versus}, {z:.1f} standard errors, {CLEAR_LIFT_Z} needed)"
        )
    else:
        recipe = with_knobs(recipe, {"use_ranker": False})
        decision, served = "stage_one", stage_one_alone
        why = (
            f"the ranker did not clearly beat stage one alone on validation ({versus}, {shown} "
            f"standard errors {over}, {CLEAR_LIFT_Z} needed): it steps aside and stage one's "
            "order is served"
        )
    if others:
        # a baseline stage one can become, which the search did not reach in its budget (or
        # which is above a ranker scored on the first split only): served as it is, without a
        # ranker trained for another stage one's lists
        wins, means = replaces(served), ""
        if wins and decision == "stage_one" and len(validations) > 1:
            # Stage one was chosen on the mean of every split: the baseline replaces it only where
            # it is above that mean too, not on the first split's users alone.
            mean = over_every_split()
            wins = mean > chosen
            means = (
                f"{mean:.4f} as stage one against the search's {chosen:.4f} on the mean of the "
                f"{len(validations)} splits"
            )
        absorbed = on_split.get(0, -math.inf)
        if wins:
            recipe = as_best
            decision = "stage_one"
            why = (
                f"baseline {best} ({others[best]:.4f}) is above the pipeline on validation "
                f"({served:.4f}): stage one becomes {best} ({absorbed:.4f} as stage one) and is "
                "served without the ranker"
                + (f"; over every split: {means}" if means else "")
                # what the ranker's test found stays on record: the baseline replaced its answer
                + (
                    f"; the ranker on the searched stage one: {versus}, {shown} standard errors "
                    f"{over}"
                    if served_ranker is not None
                    else ""
                )
            )
        elif means:
            why += (
                f"; {best} ({others[best]:.4f}; {absorbed:.4f} as stage one) is above it on the "
                f"first validation split, but not over every split ({means}): the pipeline stays"
            )
        elif math.isfinite(absorbed):  # scored only where it was above the pipeline
            why += (
                f"; {best} ({others[best]:.4f}) is above it on validation, but as stage one it "
                f"scores {absorbed:.4f}: the pipeline stays"
            )
        elif others[best] > served:
            why += f"; {best} ({others[best]:.4f}) is above it on validation: " + (
                "the request's own knobs keep it from becoming stage one"
                if kept
                else "it is not one of the scorers stage one can become"
            )
        else:
            why += f"; best baseline {best} {others[best]:.4f}"
    phases.end("the choice")
    return recipe, search_report(params, recipe, trials, phases, validations, scores, decision, why)
