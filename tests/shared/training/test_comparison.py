"""`make_split`: the evaluate command's test split, and what its note tells the user."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from shared.datasets.synthetic import generate
from shared.ml.interactions import DAY
from shared.schemas.models import TuningReport
from shared.training.comparison import FEW_TEST_USERS, make_split, tuning_line


def test_a_split_with_enough_users_says_only_what_it_is() -> None:
    split = make_split(generate(seed=3), "temporal", 20, has_time=True)
    assert len(split.truth) >= FEW_TEST_USERS
    assert split.note.startswith("temporal: the last 20 days") and "only" not in split.note


def test_few_test_users_are_said_with_what_to_try() -> None:
    """A session log: each visitor's events within minutes, so almost nobody has events on both
    sides of the cut."""
    data = generate(seed=3)
    ints = data.interactions.copy()
    first = ints.groupby("user_id")["ts"].transform("min")
    ints["ts"] = first + ints.groupby("user_id").cumcount() * 60  # one short session each
    last = float(ints["ts"].max())
    straddle = ints["user_id"].isin(ints["user_id"].unique()[:5])
    ints.loc[straddle, "ts"] = ints.loc[straddle, "ts"].where(
        ints[straddle].groupby("user_id").cumcount() == 0, int(last)
    )  # five users come back on the last day
    split = make_split(replace(data, interactions=ints), "temporal", 20, has_time=True)
    assert 0 < len(split.truth) < FEW_TEST_USERS
    assert split.note.endswith(
        f"only {len(split.truth)} test users (users with interactions on both sides of the cut: "
        "a log whose visitors rarely come back has few; a longer --test-days or --protocol msr "
        "gives more): figures over so few are noise"
    )
    assert int(pd.Series(ints["ts"]).max() - pd.Series(ints["ts"]).min()) > 20 * DAY


def test_the_tuning_line_says_the_budget_and_where_the_time_went() -> None:
    t = TuningReport(
        budget_seconds=180.0,
        spent_seconds=363.4,
        phase_seconds={"validation splits": 24.2, "stage-one search": 99.6, "second look": 239.6},
        validation="v",
        n_splits=2,
        decision="stage_one",
        reason="r",
    )
    assert (
        "in 363 s (budget 180 s, past it: what the choice needs ran to its end; validation "
        "splits 24 s, stage-one search 100 s, second look 240 s) on 2 validation split(s)"
    ) in tuning_line(t)
    within = tuning_line(t.model_copy(update={"spent_seconds": 170.0, "phase_seconds": {}}))
    assert "in 170 s (budget 180 s) on 2" in within
    small = t.model_copy(update={"budget_seconds": 0.5, "spent_seconds": 0.4, "phase_seconds": {}})
    assert "(budget 0.5 s) on 2" in tuning_line(small)  # not "budget 0 s", which means no search
