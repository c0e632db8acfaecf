"""How a recipe search is reported: its trials as recorded, and the report of what it chose."""

from __future__ import annotations

import math
import time

import optuna

from shared.schemas.models import TuningReport, TuningTrial
from shared.training.params import TrainParams
from shared.training.validation import Validation


def trial_record(trial: optuna.trial.FrozenTrial, stage: str) -> TuningTrial:
    state = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
    }.get(trial.state, "failed")
    seconds = (
        (trial.datetime_complete - trial.datetime_start).total_seconds()
        if trial.datetime_complete and trial.datetime_start
        else 0.0
    )
    return TuningTrial(
        number=trial.number,
        stage=stage,  # type: ignore[arg-type]
        params=dict(trial.user_attrs.get("knobs", trial.params)),
        score=trial.value if state == "complete" else None,
        state=state,  # type: ignore[arg-type]
        seconds=round(seconds, 2),
        origin=trial.user_attrs.get("origin"),
    )


def fixed(params: TrainParams, budget: float, note: str) -> tuple[TrainParams, TuningReport]:
    return params, TuningReport(
        budget_seconds=budget,
        spent_seconds=0.0,
        validation="none",
        n_splits=0,
        decision="two_stage" if params.use_ranker else "stage_one",
        reason="the recipe's fixed values",
        note=note,
    )


def ran(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial ran: an enqueued one the budget never reached waits, and is not a
    failure to report."""
    return trial.state != optuna.trial.TrialState.WAITING


class Phases:
    """Where a search's time went: each phase's seconds, timed from the end of the one before (a
    name ended twice adds up), in the order they first ended."""

    def __init__(self, start: float) -> None:
        self.start = self._last = start
        self.seconds: dict[str, float] = {}

    def end(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def search_report(
    params: TrainParams,
    recipe: TrainParams,
    trials: list[TuningTrial],
    phases: Phases,
    validations: list[Validation],
    scores: dict[str, float],
    decision: str,
    reason: str,
) -> TuningReport:
    before, after = params.model_dump(), recipe.model_dump()
    return TuningReport(
        budget_seconds=params.tune_budget_seconds,
        spent_seconds=round(time.monotonic() - phases.start, 1),
        phase_seconds={name: round(s, 1) for name, s in phases.seconds.items()},
        validation=", ".join(v.split.note or v.split.protocol for v in validations),
        n_splits=len(validations),
        trials=trials,
        chosen={k: after[k] for k in after if after[k] != before[k]},
        validation_ndcg={k: round(v, 6) for k, v in scores.items() if math.isfinite(v)},
        decision=decision,
        reason=reason,
    )
