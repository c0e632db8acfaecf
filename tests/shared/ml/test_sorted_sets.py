from __future__ import annotations

import numpy as np
import pytest

from shared.ml import sorted_sets


@pytest.mark.parametrize("size", [0, 1, 2, 7, 150, 3000])
def test_unique_is_numpys(size: int) -> None:
    rng = np.random.default_rng(size)
    for dtype in (np.int64, np.int32, np.float64):
        values = rng.integers(-5, size // 2 + 3, size=size).astype(dtype)  # duplicates
        got = sorted_sets.unique(values)
        want = np.unique(values)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("n_of", "n_more"), [(0, 0), (0, 5), (5, 0), (1, 1), (40, 40), (2000, 150)]
)
def test_union_is_numpys(n_of: int, n_more: int) -> None:
    rng = np.random.default_rng(n_of * 7 + n_more)
    of = np.unique(rng.integers(0, 3 * n_of + 10, size=n_of)).astype(np.int64)
    for more in (
        rng.integers(0, 3 * n_of + 10, size=n_more),  # overlapping, duplicated, unsorted
        rng.integers(-3, 3 * n_of + 20, size=n_more).astype(np.int32),  # below and past `of`
        of[:n_more].copy(),  # nothing new
    ):
        got = sorted_sets.union(of, more)
        want = np.union1d(of, more)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_union_is_a_new_array() -> None:
    of = np.array([1, 4, 9])
    out = sorted_sets.union(of, np.array([4]))
    out[0] = 100
    np.testing.assert_array_equal(of, [1, 4, 9])


@pytest.mark.parametrize(("n_of", "n_items"), [(0, 0), (0, 4), (3, 0), (1, 1), (50, 200)])
def test_find_says_what_isin_says_and_where(n_of: int, n_items: int) -> None:
    rng = np.random.default_rng(n_of + 13 * n_items)
    of = np.unique(rng.integers(0, 2 * n_of + 5, size=n_of))
    items = rng.integers(-2, 2 * n_of + 8, size=n_items)  # below, inside and past `of`
    held, at = sorted_sets.find(of, items)
    np.testing.assert_array_equal(held, np.isin(items, of))
    np.testing.assert_array_equal(of[at[held]], items[held])  # where each held one is
    np.testing.assert_array_equal(at, np.searchsorted(of, items))  # where the rest would go


@pytest.mark.parametrize("size", [0, 1, 7, 150, 3000])
def test_sums_add_each_items_values_as_a_bincount_over_every_position(size: int) -> None:
    rng = np.random.default_rng(size + 1)
    items = rng.integers(0, size // 2 + 3, size=size)  # duplicates, unsorted
    values = rng.normal(size=size)
    present, summed = sorted_sets.sums(items, values)
    np.testing.assert_array_equal(present, np.unique(items))
    full = np.bincount(items, weights=values, minlength=size // 2 + 3)
    np.testing.assert_array_equal(summed, full[present])  # the same order of additions
    assert summed.dtype == np.float64
