"""The ranker compiled to native code scores exactly as LightGBM does, and anything that goes
wrong in compiling leaves LightGBM predicting."""

from __future__ import annotations

import logging
import sys

import lightgbm as lgb
import numpy as np
import pytest

from shared.ml.stage_two import compiled
from shared.ml.stage_two.features import CATEGORICAL, FEATURE_NAMES
from shared.ml.stage_two.model import CASCADE_ROWS, RankerEnsemble, RankingData, fit_ranker

CATEGORICAL_COLUMNS = [FEATURE_NAMES.index(name) for name in CATEGORICAL]


def _lists(rng: np.random.Generator, n_lists: int) -> RankingData:
    """Lists whose labels follow a numeric feature and, for category 2, a categorical one."""
    xs, ys = [], []
    for _ in range(n_lists):
        x = rng.normal(size=(30, len(FEATURE_NAMES))).astype(np.float32)
        x[rng.random(x.shape) < 0.05] = np.nan  # missing values take their own branch
        category = rng.integers(0, 4, 30)
        x[:, FEATURE_NAMES.index("item_category")] = category
        x[:, FEATURE_NAMES.index("user_segment")] = rng.integers(0, 3, 30)
        signal = np.nan_to_num(x[:, 0]) + 1.5 * (category == 2) + 0.5 * rng.normal(size=30)
        xs.append(x)
        ys.append((signal > 1.0).astype(np.float32))
    return RankingData.stack(xs, ys)


@pytest.fixture(scope="module")
def members() -> list[RankerEnsemble]:
    rng = np.random.default_rng(3)
    train, valid = _lists(rng, 300), _lists(rng, 60)
    return [fit_ranker(train, valid, 60, seed) for seed in (1, 2, 3)]


def test_compiled_members_give_lightgbms_scores(members: list[RankerEnsemble]) -> None:
    plain = RankerEnsemble.average(members)
    native = RankerEnsemble.from_text(plain.to_text())
    assert native.compile() == 3
    x = _lists(np.random.default_rng(9), 10).x
    x[0, :] = np.nan  # a row with nothing known
    x[1, FEATURE_NAMES.index("item_category")] = -1  # an unknown category
    x[2, FEATURE_NAMES.index("item_category")] = 99  # a category the trees never saw
    assert len(x) > CASCADE_ROWS  # the cascade runs: members 2 and 3 re-score the best rows
    np.testing.assert_allclose(native.score(x), plain.score(x), rtol=0, atol=1e-12)
    one = RankerEnsemble.from_text(members[0].to_text())
    one.compile()
    np.testing.assert_allclose(one.score(x), members[0].score(x), rtol=0, atol=1e-12)
    assert native.score(x[:0]).shape == (0,)


def test_compiled_scores_are_not_lightgbms_call(
    members: list[RankerEnsemble], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled predictor really is the one used after compile(), not LightGBM's."""
    ranker = RankerEnsemble.from_text(members[0].to_text())
    ranker.compile()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("LightGBM predict called")

    monkeypatch.setattr(ranker.booster, "predict", refuse)
    assert ranker.score(_lists(np.random.default_rng(4), 2).x).shape == (60,)


def test_without_lleaves_lightgbm_predicts(
    members: list[RankerEnsemble], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import fails
    ranker = RankerEnsemble.from_text(members[0].to_text())
    with caplog.at_level(logging.WARNING):
        assert ranker.compile() == 0
    assert "lleaves is not installed" in caplog.text
    x = _lists(np.random.default_rng(5), 2).x
    np.testing.assert_array_equal(ranker.score(x), members[0].score(x))


def test_a_compiled_forest_that_disagrees_with_lightgbm_is_refused(
    members: list[RankerEnsemble], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_lightgbm = compiled.lightgbm_predict

    def off_by_a_little(booster: lgb.Booster) -> compiled.Predict:
        predict = real_lightgbm(booster)
        return lambda x: predict(x) + 1e-6

    monkeypatch.setattr(compiled, "lightgbm_predict", off_by_a_little)
    boosters = [m.booster for m in members[:2]]
    with caplog.at_level(logging.ERROR):
        assert compiled.compile_boosters(boosters, CATEGORICAL_COLUMNS) == [None, None]
    assert "differs from LightGBM" in caplog.text


def test_a_compile_that_does_not_finish_is_logged_and_refused(
    members: list[RankerEnsemble], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(compiled, "COMPILE_TIMEOUT_S", 0.01)  # the child is killed
    ranker = RankerEnsemble.from_text(members[0].to_text())
    with caplog.at_level(logging.ERROR):
        assert ranker.compile() == 0
    assert "compiling the ranker failed" in caplog.text and "timed out" in caplog.text
    x = _lists(np.random.default_rng(6), 2).x
    np.testing.assert_array_equal(ranker.score(x), members[0].score(x))
