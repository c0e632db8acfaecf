"""The knobs the recipe search may set, and their ranges."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

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


# The search space, one entry per knob: the choices a trial picks from (in this order: the
# sampler's draws depend on it), or the range it draws in (low, high, on a log scale).
CHOICES: dict[str, list[Knob]] = {
    "graph_kind": ["ease", "item_knn", "als"],
    "graph_neighbours": list(NEIGHBOURS),
    "als_factors": [32, 64, 128],
    "als_alpha": [1.0, 10.0, 40.0],
    "graph_lowrank": [0, 16, 32, 64],
    "graph_session_minutes": [0.0, 1.0, 5.0, 30.0],
    "graph_label_weight": list(LABEL_WEIGHTS),
    "graph_title_labels": [False, True],
    "graded_labels": [True, False],
    "ranker_prior_weight": list(PRIORS),
    "ranker_leaves": [7, 15, 31, 63],
    "num_boost_round": [100, 300, 600],
}
RANGES: dict[str, tuple[float, float, bool]] = {
    "als_regularization": (0.01, 100.0, True),
    "graph_lowrank_weight": (0.1, 2.0, False),
    "graph_l2": (10.0, 5000.0, True),
}

# The defaults trial's knobs: every one the stage-one space may suggest for the default kind of
# graph, or TPE would draw those left out at random.
DEFAULT_KNOBS = (
    "graph_kind",
    "graph_neighbours",
    "graph_lowrank",
    "graph_lowrank_weight",
    "graph_l2",
    "graph_session_minutes",
    "graph_label_weight",
    "graph_title_labels",
)


class WarmStart(NamedTuple):
    """The recipe of the version serving, trained on the same data: a retrain's searches try it
    right after their defaults, so that a short budget still reaches what won last time."""

    version: int
    recipe: Mapping[str, Any]

    def in_space(self) -> dict[str, Knob]:
        """Its knobs' values a trial can take: one from an older search space (a choice since
        dropped, a range since narrowed) is left out."""
        out: dict[str, Knob] = {}
        for name, choices in CHOICES.items():
            value = self.recipe.get(name)
            if any(type(value) is type(c) and value == c for c in choices):
                out[name] = value  # type: ignore[assignment]
        for name, (low, high, _) in RANGES.items():
            value = self.recipe.get(name)
            if type(value) in (int, float) and low <= value <= high:  # type: ignore[operator]
                out[name] = float(value)  # type: ignore[arg-type]
        return out

    def enqueue(
        self,
        study: optuna.Study,
        space: Callable[[optuna.trial.BaseTrial], dict[str, Knob]],
        after: optuna.trial.FrozenTrial,
    ) -> None:
        """Queues the recipe's knobs as `space` uses them, unless they are the trial `after`'s
        (the defaults, which already ran)."""
        try:
            knobs = space(optuna.trial.FixedTrial(self.in_space()))
        except ValueError:  # a knob the space needs has no value it can take: nothing to try
            return
        if knobs != after.user_attrs.get("knobs"):
            study.enqueue_trial(knobs, user_attrs={"origin": f"version {self.version}"})


class Space:
    """Suggests a trial's knobs, except those the request set itself: those stay as given (a
    user who asks for `graph_lowrank=0` gets no low-rank filter, tuned or not)."""

    def __init__(self, trial: optuna.trial.BaseTrial, params: TrainParams) -> None:
        self.trial, self.params = trial, params
        self.fixed = params.model_fields_set
        self.knobs: dict[str, Knob] = {}

    def pick(self, name: str) -> Any:
        value = getattr(self.params, name)
        if name not in self.fixed:
            value = self.trial.suggest_categorical(name, CHOICES[name])
        self.knobs[name] = value
        return value

    def between(self, name: str) -> float:
        value = float(getattr(self.params, name))
        if name not in self.fixed:
            low, high, log = RANGES[name]
            value = self.trial.suggest_float(name, low, high, log=log)
        self.knobs[name] = value
        return value


def stage_one_space(
    trial: optuna.trial.BaseTrial, data: Dataset, params: TrainParams, has_time: bool
) -> dict[str, Knob]:
    space = Space(trial, params)
    kind = space.pick("graph_kind")
    space.pick("graph_neighbours")
    if kind == "als":  # ALS scores alone: its own knobs, no low-rank filter beside it
        space.pick("als_factors")
        space.between("als_regularization")
        space.pick("als_alpha")
        return space.knobs
    if space.pick("graph_lowrank"):
        space.between("graph_lowrank_weight")
    if kind == "ease":
        space.between("graph_l2")
        if has_time:
            space.pick("graph_session_minutes")
        labels, titles = _has_labels(data)
        weight = (labels or titles) and space.pick("graph_label_weight")
        if weight and titles:
            space.pick("graph_title_labels")
    return space.knobs


def ranker_space(
    trial: optuna.trial.BaseTrial, params: TrainParams, graded: bool
) -> dict[str, Knob]:
    """`graded`: whether the lists' labels have grades (ratings, event weights) the ranker may
    learn from or ignore (taken or not is what validation scores)."""
    space = Space(trial, params)
    if graded:
        space.pick("graded_labels")
    space.pick("ranker_prior_weight")
    space.pick("ranker_leaves")
    space.pick("num_boost_round")
    return space.knobs


def with_knobs(params: TrainParams, knobs: dict[str, Any]) -> TrainParams:
    return TrainParams.model_validate({**params.model_dump(), **knobs})
