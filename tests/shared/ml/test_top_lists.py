from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shared.ml import top_lists
from shared.ml.top_lists import factor_top_k, sparse_top_k, top_k


def stable_reference(dense: np.ndarray, k: int, excluded: np.ndarray) -> np.ndarray:
    """Each row's allowed items by score, every tie to the lower position, padded with -1."""
    out = np.full((dense.shape[0], k), -1, dtype=np.int64)
    for r in range(dense.shape[0]):
        allowed = np.flatnonzero(~excluded[r])
        best = allowed[np.argsort(-dense[r, allowed], kind="stable")][:k]
        out[r, : len(best)] = best
    return out


def assert_same_lists(got: np.ndarray, want: np.ndarray, values: np.ndarray) -> None:
    """The same scores in the same places (which of the items tied at the cut make a list is
    each form's own choice), ties within a list to the lower position."""
    assert ((got == -1) == (want == -1)).all()
    picked = np.where(got >= 0, np.take_along_axis(values, np.maximum(got, 0), axis=1), -np.inf)
    wanted = np.where(want >= 0, np.take_along_axis(values, np.maximum(want, 0), axis=1), -np.inf)
    np.testing.assert_array_equal(picked, wanted)
    tied = (picked[:, 1:] == picked[:, :-1]) & (got[:, 1:] >= 0)
    assert (got[:, 1:][tied] > got[:, :-1][tied]).all()


def exclusions(n_rows: int, n_items: int, seed: int) -> sp.csr_matrix:
    """A random mask with a row that excludes everything and a stored zero (which excludes
    nothing)."""
    mask = sp.random(n_rows, n_items, density=0.3, random_state=seed).toarray() != 0
    mask[2] = True
    dense = mask.astype(np.float32)
    out = sp.csr_matrix(dense)
    zero_at = int(np.flatnonzero(~mask[0])[0])
    out = sp.csr_matrix(
        (
            np.append(out.data, 0.0),
            (np.append(out.nonzero()[0], 0), np.append(out.nonzero()[1], zero_at)),
        ),
        shape=mask.shape,
    )
    assert out[0, zero_at] == 0 and out.nnz == mask.sum() + 1
    return out


def test_top_k_masks_sorts_and_pads() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [4.0, 3.0, 2.0, 1.0], [np.nan, -np.inf, 1.0, 0.0]])
    before = scores.copy()
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]))
    out = top_k(scores, 4, exclude)
    np.testing.assert_array_equal(out[:2], [[2, 3, 0, -1], [3, -1, -1, -1]])
    # NaN / -inf scores rank last but are still available items, never padding
    assert out[2, :2].tolist() == [2, 3]
    assert set(out[2, 2:].tolist()) == {0, 1}
    np.testing.assert_array_equal(scores, before)  # masking never writes to the caller's array
    np.testing.assert_array_equal(top_k(scores[:1], 6, exclude[:1]), [[2, 3, 0, -1, -1, -1]])


def test_top_k_puts_the_lower_position_first_among_tied_scores() -> None:
    tied = np.array([[0.5, 1.0, 0.5, 1.0, 0.2, 0.5]], dtype=np.float32)
    none = sp.csr_matrix(tied.shape)
    np.testing.assert_array_equal(top_k(tied, 5, none), [[1, 3, 0, 2, 5]])
    np.testing.assert_array_equal(top_k(tied.astype(np.int64), 2, none), [[1, 3]])


@pytest.mark.parametrize("k", [1, 4, 12, 33])
def test_sparse_top_k_is_the_stable_order_of_the_dense_scores(k: int) -> None:
    rng = np.random.default_rng(k)
    n_rows, n_items = 40, 30
    # few distinct values: ties among scored items, and rows with fewer than k of them
    scores = sp.random(n_rows, n_items, density=0.15, random_state=k, format="csr")
    scores.data = rng.integers(1, 4, size=scores.nnz).astype(np.float64)
    exclude = exclusions(n_rows, n_items, seed=k + 1)
    want = stable_reference(scores.toarray(), k, exclude.toarray() != 0)
    np.testing.assert_array_equal(sparse_top_k(scores, k, exclude), want)
    # the dense path lists the same scores (which tied item makes its cut is its own choice)
    assert_same_lists(top_k(scores.toarray(), k, exclude), want, scores.toarray())


def test_sparse_top_k_fills_in_blocks_of_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = sp.random(50, 20, density=0.1, random_state=3, format="csr")
    exclude = exclusions(50, 20, seed=4)
    want = sparse_top_k(scores, 8, exclude)
    monkeypatch.setattr(top_lists, "BLOCK_SCORES", 1)  # one row per block
    np.testing.assert_array_equal(sparse_top_k(scores, 8, exclude), want)


def test_sparse_top_k_refuses_negative_scores() -> None:
    scores = sp.csr_matrix(np.array([[0.5, -1.0, 0.0]]))
    with pytest.raises(ValueError, match=">= 0"):
        sparse_top_k(scores, 2, sp.csr_matrix((1, 3)))


@pytest.mark.parametrize("k", [1, 5, 25, 40])
def test_factor_top_k_is_top_k_of_the_product(k: int) -> None:
    rng = np.random.default_rng(k)
    users = rng.standard_normal((60, 8)).astype(np.float32)
    items = rng.standard_normal((25, 8)).astype(np.float32)
    items[7] = items[3]  # a tie: the lower position first
    exclude = exclusions(60, 25, seed=k)
    got = factor_top_k(users, items, k, exclude, num_threads=2)
    scores = users @ items.T
    assert_same_lists(got, stable_reference(scores, k, exclude.toarray() != 0), scores)
    assert_same_lists(got, top_k(scores, k, exclude), scores)
    assert (got[2] == -1).all()  # the user who excluded everything
