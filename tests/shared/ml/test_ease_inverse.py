"""EASE's inverse: float32 where it is accurate enough (checked), float64 where it is not."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from shared.ml import ease_inverse
from shared.ml.ease_inverse import SINGLE_TOLERANCE, PenalisedGram, ease_weights, inverse_error


def gram_of(n_users: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    x = sp.random(n_users, n_items, density=density, format="csr", random_state=seed)
    x.data[:] = 1.0
    return (x.T @ x).tocsr()


def weights(gram: sp.csr_matrix, l2: float, single_from: int, mp: pytest.MonkeyPatch) -> np.ndarray:
    mp.setattr(ease_inverse, "SINGLE_MIN_ITEMS", single_from)
    return ease_weights(PenalisedGram(gram, None, [np.array([0, 3, 5])], 2.0, l2, 0.25))


def test_float32_weights_match_float64_and_keep_each_items_neighbours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gram = gram_of(3000, 400, 0.03, seed=1)
    exact = weights(gram, 50.0, 10**9, monkeypatch)
    single = weights(gram, 50.0, 0, monkeypatch)
    assert exact.dtype == single.dtype == np.float32
    assert not np.array_equal(exact, single)  # the float32 path ran
    scale = np.abs(exact).max(axis=0)
    assert (np.abs(single - exact).max(axis=0) <= 1e-3 * scale).all()
    top = np.argsort(-exact, axis=0)[:10]
    top_single = np.argsort(-single, axis=0)[:10]
    same = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top.T, top_single.T, strict=True)])
    assert same > 0.99


def test_an_ill_conditioned_matrix_is_inverted_in_float64(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # dense co-counts and a tiny penalty: float32 loses most digits of the inverse
    gram = gram_of(5000, 300, 0.3, seed=2)
    exact = weights(gram, 1e-3, 10**9, monkeypatch)
    with caplog.at_level(logging.INFO, logger=ease_inverse.__name__):
        checked = weights(gram, 1e-3, 0, monkeypatch)
    assert "computed in float64" in caplog.text
    np.testing.assert_array_equal(checked, exact)


def test_the_error_estimate_sees_a_wrong_inverse() -> None:
    gram = PenalisedGram(gram_of(500, 60, 0.1, seed=3), None, [], 0.0, 10.0, 0.0).dense(np.float32)
    p = np.linalg.inv(gram.astype(np.float64)).astype(np.float32)
    assert inverse_error(gram, p, 10.0) < 1e-5
    p[:, :] *= 1.01  # every column 1 % off
    assert inverse_error(gram, p, 10.0) > SINGLE_TOLERANCE


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_inverse_is_whole_and_symmetric_across_the_mirror_blocks(dtype: type) -> None:
    # a size that is no multiple of the block the lower triangle is filled by
    n = 2 * ease_inverse.MIRROR_BLOCK + 37
    gram = PenalisedGram(gram_of(4000, n, 0.02, seed=4), None, [], 0.0, 20.0, 0.0).dense(dtype)
    exact = np.linalg.inv(gram.astype(np.float64))
    p = ease_inverse._inverse(gram.copy())
    assert p.dtype == dtype and p.flags.c_contiguous
    np.testing.assert_array_equal(p, p.T)
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    assert np.abs(p - exact).max() <= tolerance * np.abs(exact).max()
