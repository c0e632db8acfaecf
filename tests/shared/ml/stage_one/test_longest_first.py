"""`LongestFirst.top`: every item of the best k, reading only the longest vectors it must."""

from __future__ import annotations

import numpy as np
import pytest

from shared.ml.stage_one.longest_first import LongestFirst


def steep(n: int, rank: int, seed: int) -> np.ndarray:
    """Item vectors whose lengths fall steeply, as fitted item factors' do (popular items hold
    the weight), in a random order."""
    rng = np.random.default_rng(seed)
    lengths = (1.0 / np.arange(1, n + 1))[rng.permutation(n)]
    return (rng.normal(size=(n, rank)) * lengths[:, None]).astype(np.float32)


def best_k(vectors: np.ndarray, query: np.ndarray, k: int, eligible: np.ndarray) -> set[int]:
    """The eligible items scoring at least the k-th best eligible score, by scoring them all."""
    scores = vectors @ query
    kth = np.sort(scores[eligible])[-k]
    return set(np.flatnonzero(eligible & (scores >= kth)).tolist())


@pytest.mark.parametrize("seed", range(4))
def test_finds_every_item_of_the_best_k(seed: int) -> None:
    vectors = steep(5000, 8, seed)
    scan = LongestFirst(vectors)
    rng = np.random.default_rng(seed)
    for _ in range(20):
        query = rng.normal(size=8).astype(np.float32)
        skip = np.unique(rng.integers(0, 5000, 300))
        allowed = rng.random(5000) < 0.7 if seed % 2 else None
        eligible = np.ones(5000, dtype=bool)
        eligible[skip] = False
        if allowed is not None:
            eligible &= allowed
        k = int(rng.integers(1, 80))
        got = scan.top(query, k, skip, allowed)
        assert best_k(vectors, query, k, eligible) <= set(got.tolist())  # none of the k missed
        assert eligible[got].all()  # nothing skipped or filtered out comes back


def test_reads_only_the_longest_vectors() -> None:
    vectors = steep(50_000, 8, 0)
    scan = LongestFirst(vectors)
    query = vectors[:5].sum(axis=0)
    want = best_k(vectors, query, 50, np.ones(50_000, dtype=bool))
    # vectors past the first quarter made unreadable: the scan must stop before them
    scan.rows[12_500:] = np.nan
    got = scan.top(query, 50, np.empty(0, dtype=np.int64), None)
    assert want <= set(got.tolist()) and len(got) == 50


def test_a_floor_stops_the_scan_where_nothing_left_can_pass_it() -> None:
    vectors = steep(50_000, 8, 1)
    scan = LongestFirst(vectors)
    query = np.zeros(8, dtype=np.float32)  # every score is zero: nothing passes a floor of 0
    got = scan.top(query, 50, np.empty(0, dtype=np.int64), None, floor=0.0)
    assert set(got.tolist()) <= set(scan.order[:1024].tolist())  # the first block, no more
    with_no_floor = LongestFirst(vectors).top(query, 50, np.empty(0, dtype=np.int64), None)
    assert len(with_no_floor) == 50_000  # zero ties with zero: every item is among the best


def test_skipped_items_stay_out_in_every_block_the_scan_reads() -> None:
    # lengths that barely fall: the scan reads block after block
    vectors = np.random.default_rng(2).normal(size=(20_000, 8)).astype(np.float32)
    scan = LongestFirst(vectors)
    query = vectors[0]
    best = np.argsort(-(vectors @ query))[:40]
    blocks = np.searchsorted([1024, 3072, 7168, 15360], scan.place[best], "right")
    assert len(np.unique(blocks)) > 2  # the skipped items sit in several of the blocks read
    eligible = np.ones(20_000, dtype=bool)
    eligible[best] = False
    for k in (40, 5000):  # 5000: the best of the rest span the blocks the skipped items sit in
        got = scan.top(query, k, np.sort(best), None)
        assert set(got.tolist()) == best_k(vectors, query, k, eligible)  # no ties here
