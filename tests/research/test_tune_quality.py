"""research/tune_quality.py carves its validation split from the test split's training part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from research.tune_quality import main, validation_split
from shared.datasets import synthetic
from shared.ml.interactions import DAY
from shared.training.comparison import make_split

pytestmark = pytest.mark.research  # the default run has test_smoke.py's run only


def _rows(frame: pd.DataFrame) -> set[tuple[str, str, int]]:
    return set(zip(frame["user_id"], frame["product_id"], frame["ts"].astype(int), strict=True))


@pytest.mark.parametrize("protocol", ["temporal", "msr"])
def test_validation_truth_lies_strictly_inside_the_training_part(protocol: str) -> None:
    data = synthetic.generate(n_users=80, n_products=40, n_days=90, seed=3)
    test = make_split(data, protocol, 20, has_time=True)
    valid = validation_split(data, protocol, 20, has_time=True)
    outer_rows, inner_rows = _rows(test.train.interactions), _rows(valid.train.interactions)
    assert valid.truth and inner_rows < outer_rows  # a strict subset of the training part
    outer = test.train.interactions
    for user, items in valid.truth.items():
        taken = outer[outer["user_id"] == user]
        # every validation item is an interaction of the training part, never of the test part
        assert items <= set(taken["product_id"])
        assert items.isdisjoint(
            valid.train.interactions.loc[valid.train.interactions["user_id"] == user, "product_id"]
        )
    if protocol == "temporal":
        cut = float(outer["ts"].max()) + 1 - 20 * DAY
        assert float(valid.train.interactions["ts"].max()) < cut
        assert float(outer["ts"].max()) < float(data.interactions["ts"].max()) + 1 - 20 * DAY
    else:  # msr: seed 7 on the msr training part, not the test split's seed
        sizes = valid.train.interactions.groupby("user_id").size()
        outer_sizes = outer.groupby("user_id").size().reindex(sizes.index)
        assert np.all(sizes.to_numpy() < outer_sizes.to_numpy())


def test_a_malformed_override_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--dataset", "synthetic", "--data-path", ".", "ranker_models"])
    assert exc.value.code == 2
    assert "expected KEY=VALUE, got 'ranker_models'" in capsys.readouterr().err


def test_a_second_fold_validates_one_window_earlier_or_with_another_seed() -> None:
    data = synthetic.generate(n_users=80, n_products=40, n_days=90, seed=3)
    first = validation_split(data, "temporal", 20, True)
    second = validation_split(data, "temporal", 20, True, fold=1)
    first_cut = float(first.train.interactions["ts"].max())
    assert float(second.train.interactions["ts"].max()) < first_cut - 19 * DAY
    assert _rows(second.train.interactions) < _rows(first.train.interactions)
    msr_first = validation_split(data, "msr", 20, True)
    msr_second = validation_split(data, "msr", 20, True, fold=1)
    assert msr_first.truth != msr_second.truth  # another random quarter held out
    assert len(msr_first.train.interactions) == len(msr_second.train.interactions)
