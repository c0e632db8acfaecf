"""An identical dense EASE fit inside a scope reuses the last one's weights; nothing else does."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shared.ml import dense_reuse
from shared.ml.baselines import EASE
from shared.ml.dense_reuse import reuse_dense_fits
from shared.ml.ease_inverse import PenalisedGram

N_ITEMS = dense_reuse.MIN_ITEMS  # the smallest catalog whose fit is kept


def _matrix(seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.random(400, N_ITEMS, density=0.01, format="csr", random_state=rng) * 5


def _fit(x: sp.csr_matrix, l2: float = 500.0, **kwargs: object) -> np.ndarray:
    model = EASE(l2=l2)
    model.fit(x, **kwargs)  # type: ignore[arg-type]
    return model.item_weights


def test_an_identical_fit_in_a_scope_reuses_the_weights_and_scores_the_same() -> None:
    x = _matrix(0)
    alone = _fit(x)
    with reuse_dense_fits():
        first = _fit(x)
        # the same pairs with other strengths and rows in another order: the same Gram matrix
        again = _fit(sp.csr_matrix(x[::-1] * 2.0))
    assert again is first
    np.testing.assert_array_equal(first, alone)
    with pytest.raises(ValueError):  # shared by both models: nobody may write into it
        first[0, 0] = 1.0


def test_a_fit_that_differs_in_anything_it_reads_is_fitted_anew() -> None:
    x = _matrix(0)
    pairs = sp.csr_matrix(([3.0], ([0], [1])), shape=(N_ITEMS, N_ITEMS))
    with reuse_dense_fits():
        first = _fit(x)
        others = [
            _fit(_matrix(1)),
            _fit(x, l2=50.0),
            _fit(x, extra_gram=pairs),
            _fit(x, groups=[np.arange(10)], group_weight=5.0),
        ]
    assert all(w is not first for w in others)
    assert not np.array_equal(others[1], first)


def test_outside_a_scope_nothing_is_kept() -> None:
    x = _matrix(0)
    with reuse_dense_fits():
        _fit(x)
    assert _fit(x) is not _fit(x)
    assert dense_reuse.fit_key(PenalisedGram.of(x.T @ x, None, (), 0.0, 500.0, 0.0)) is None


def test_a_small_catalog_is_not_kept() -> None:
    x = _matrix(0)[:, : N_ITEMS - 1]
    with reuse_dense_fits():
        assert _fit(x) is not _fit(x)


def test_a_different_fit_between_drops_the_kept_one() -> None:
    """One fit is kept: it is freed before a different one allocates."""
    a, b = _matrix(0), _matrix(1)
    with reuse_dense_fits():
        first = _fit(a)
        _fit(b)
        assert _fit(a) is not first
