"""The knobs the recipe search may set, and their ranges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from shared.datasets.base import Dataset
from shared.schemas.models import Knob
from shared.training.params import TrainParams

NEIGHBOURS = [50, 100, 200, 500, 2000]  # 2000: unpruned, on catalogs up to that size


PRIORS = [0.0, 0.5, 1.0, 2.0, 4.0]


LABEL_WEIGHTS = [0.0, 5.0, 20.0, 50.0, 200.0]


# Baselines stage one can become, as stage-one recipes: the search's first trials, and what is
# served where one still beats the pipeline on validation. The search tries unpruned EASE where
# the graph's limit holds the whole catalog; past it (up to EASE's own dense limit) the baseline
# is still fitted, and stage one becomes it over every item where it wins.
ABSORBED: dict[str, dict[str, Knob]] = {
    "ease": {
        "graph_kind": "ease",
        "graph_neighbours": 2000,
        "graph_lowrank": 0,
        "graph_l2": 500.0,
        "graph_session_minutes": 0.0,
        "graph_label_weight": 0.0,
    },
    "item_knn": {"graph_kind": "item_knn", "graph_neighbours": 100, "graph_lowrank": 0},
    "als": {
        "graph_kind": "als",
        "graph_neighbours": 100,
        "als_factors": 64,
        "als_regularization": 0.05,
        "als_alpha": 10.0,
    },
}


def _has_labels(data: Dataset) -> tuple[bool, bool]:
    items = data.items
    labels = bool(items["category"].notna().any()) or (
        "tags" in items and bool(items["tags"].notna().any())
    )
    return labels, bool(items["title"].notna().any())


class Space:
    """Suggests a trial's knobs, except those the request set itself: those stay as given (a
    user who asks for `graph_lowrank=0` gets no low-rank filter, tuned or not)."""

    def __init__(self, trial: optuna.Trial, params: TrainParams) -> None:
        self.trial, self.params = trial, params
        self.fixed = params.model_fields_set
        self.knobs: dict[str, Knob] = {}

    def pick(self, name: str, choices: Sequence[Knob]) -> Any:
        value = getattr(self.params, name)
        if name not in self.fixed:
            value = self.trial.suggest_categorical(name, list(choices))
        self.knobs[name] = value
        return value

    def between(self, name: str, low: float, high: float, log: bool = False) -> float:
        value = float(getattr(self.params, name))
        if name not in self.fixed:
            value = self.trial.suggest_float(name, low, high, log=log)
        self.knobs[name] = value
        return value


def stage_one_space(
    trial: optuna.Trial, data: Dataset, params: TrainParams, has_time: bool
) -> dict[str, Knob]:
    space = Space(trial, params)
    kind = space.pick("graph_kind", ["ease", "item_knn", "als"])
    space.pick("graph_neighbours", NEIGHBOURS)
    if kind == "als":  # ALS scores alone: its own knobs, no low-rank filter beside it
        space.pick("als_factors", [32, 64, 128])
        space.between("als_regularization", 0.01, 100.0, log=True)
        space.pick("als_alpha", [1.0, 10.0, 40.0])
        return space.knobs
    if space.pick("graph_lowrank", [0, 16, 32, 64]):
        space.between("graph_lowrank_weight", 0.1, 2.0)
    if kind == "ease":
        space.between("graph_l2", 10.0, 5000.0, log=True)
        if has_time:
            space.pick("graph_session_minutes", [0.0, 1.0, 5.0, 30.0])
        labels, titles = _has_labels(data)
        weight = (labels or titles) and space.pick("graph_label_weight", LABEL_WEIGHTS)
        if weight and titles:
            space.pick("graph_title_labels", [False, True])
    return space.knobs


def ranker_space(trial: optuna.Trial, params: TrainParams, graded: bool) -> dict[str, Knob]:
    """`graded`: whether the lists' labels have grades (ratings, event weights) the ranker may
    learn from or ignore (taken or not is what validation scores)."""
    space = Space(trial, params)
    if graded:
        space.pick("graded_labels", [True, False])
    space.pick("ranker_prior_weight", PRIORS)
    space.pick("ranker_leaves", [7, 15, 31, 63])
    space.pick("num_boost_round", [100, 300, 600])
    return space.knobs


def with_knobs(params: TrainParams, knobs: dict[str, Any]) -> TrainParams:
    return TrainParams.model_validate({**params.model_dump(), **knobs})
