"""Stage one's request-time search: a user's items -> neighbours merged, scored item positions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp

from shared.ml import sorted_sets
from shared.ml.interactions import DAY, UserItemStats
from shared.ml.stage_one.index import CandidateIndex, within
from shared.ml.stage_one.longest_first import is_wide

SEED_HALF_LIFE_DAYS = 30.0
SAMPLE = 4096  # values `_best_first` samples for a floor before partitioning a long list


@dataclass(frozen=True)
class SearchResult:
    """Stage one's candidates as item positions (before ids and reasons are attached)."""

    items: np.ndarray  # item positions, best first
    scores: np.ndarray  # stage-one score: neighbour-graph score where a graph exists
    similarity: np.ndarray  # embedding k-NN score of the recent seeds
    seeds: np.ndarray  # the seed item that contributed most, -1 for popularity top-ups


def _row_entries(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in m.data, column, index into `rows`) of every stored entry of `rows`."""
    starts = m.indptr[rows]
    lengths = m.indptr[rows + 1] - starts
    shift = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    pos = shift + np.arange(len(shift), dtype=shift.dtype)
    return pos, m.indices[pos], np.repeat(np.arange(len(rows)), lengths)


def _strongest(
    n_items: int, items: np.ndarray, values: np.ndarray, rows: np.ndarray, seeds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(items, seed): each distinct item of `items` (ascending) with seeds[row] of its largest
    value (the lowest row on a tie)."""
    if not len(items):
        return items[:0], seeds[:0]
    if 16 * len(items) > n_items:  # a small catalog: two arrays as wide as it are cheaper
        top = np.full(n_items, -np.inf)
        np.maximum.at(top, items, values)
        win = values == top[items]
        low = np.full(n_items, len(rows))
        np.minimum.at(low, items[win], rows[win])
        has = np.flatnonzero(low < len(rows))
        return has, seeds[low[has]]
    # one sort of the entries, not two catalog-wide arrays: a request's entries are thousands
    order = np.lexsort((rows, -values, items))
    items, rows = items[order], rows[order]
    first = np.ones(len(items), dtype=bool)
    first[1:] = items[1:] != items[:-1]
    return items[first], seeds[rows[first]]


class _ByItem:
    """Values over a sorted set of item positions, zero elsewhere (the whole catalog's positions
    when `dense`: then lookups are plain indexing)."""

    def __init__(self, items: np.ndarray, values: np.ndarray, dense: bool = False) -> None:
        self.items, self.values, self.dense = items, values, dense

    def where(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(held, position in self.items) for each of `items`."""
        if self.dense:
            return np.ones(len(items), dtype=bool), items
        held, at = sorted_sets.find(self.items, items)
        return held, np.minimum(at, max(len(self.items) - 1, 0))

    def at(self, items: np.ndarray) -> np.ndarray:
        held, pos = self.where(items)
        out = np.zeros(len(items), dtype=np.float64)
        out[held] = self.values[pos[held]]
        return out

    def zero(self, items: np.ndarray) -> None:
        """Set the values of `items` (those held) to zero."""
        held, pos = self.where(items)
        self.values[pos[held]] = 0.0


def _best_first(items: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """The k of `items` with the largest `values`, best first, ties in `items`' order: the
    first k of a stable sort by -values, without sorting the thousands a long history reaches
    (a partition finds the k-th value; only what ties or beats it is sorted)."""
    if k <= 0:
        return items[:0]
    if k <= SAMPLE // 8 and k < len(items) // 8 and len(items) > SAMPLE:
        # a strided sample's k-th largest is at most the whole's: what falls below it cannot be
        # in the top k, and the rest is a few times k, not a catalog (same answer, less sorted)
        floor = np.partition(values[:: len(values) // SAMPLE], -k)[-k]
        keep = np.flatnonzero(values >= floor)
        items, values = items[keep], values[keep]
    if k < len(items):
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = np.flatnonzero(values >= kth)  # in items' order, every tie at the cut included
        items, values = items[keep], values[keep]
    picked: np.ndarray = items[np.argsort(-values, kind="stable")][:k]
    return picked


def generate_candidates(
    index: CandidateIndex,
    history: UserItemStats,
    user: int,
    as_of: float,
    n: int,
    n_seeds: int = 20,
    per_seed: int = 100,
    live_items: np.ndarray | None = None,
    live_weights: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    exclude_history: bool = True,
    live_exclude: np.ndarray | None = None,
) -> SearchResult:
    """Neighbours of the user's items, merged; items the user already has are excluded.

    Embedding k-NN over the most recent seeds (weighted by strength and recency) always proposes;
    with a neighbour graph, the graph's score over the whole history ranks and proposes too (three
    quarters of the list); popular items top the list up to `n`. `live_items` are what the user
    did since the model was trained (events): the newest seeds, weighted by event type.
    `allowed` (a boolean mask over items) keeps only items that pass the request's filters.
    What the user already has is never proposed again unless the shop allows repeats: the trained
    history is excluded with `exclude_history`, each live event where `live_exclude` says so.
    """
    if user >= 0:
        sl = history.row(user)
        seen = history.indices[sl]
        last = history.last_ts[sl]
        order = np.argsort(-last, kind="stable")[:n_seeds]
        seeds = seen[order]
        weights = np.log1p(history.strength[sl][order]) * 0.5 ** (
            (as_of - last[order]) / DAY / SEED_HALF_LIFE_DAYS
        )
    else:
        seen = seeds = np.empty(0, dtype=np.int64)
        weights = np.empty(0, dtype=np.float64)
    graph_seeds, graph_weights = seen, np.ones(len(seen))
    # ALS weighs what a user took by its strength, as its fit did (the graph counts it once)
    strengths = history.strength[sl].astype(np.float64) if user >= 0 else np.empty(0)
    excluded = seen if exclude_history else np.empty(0, dtype=np.int64)
    if live_items is not None and live_weights is not None and len(live_items):
        seeds = np.concatenate([live_items, seeds])
        weights = np.concatenate([live_weights, weights])
        graph_seeds = np.concatenate([seen, live_items])
        graph_weights = np.concatenate([graph_weights, live_weights])
        strengths = np.concatenate([strengths, live_weights])
        seen = sorted_sets.unique(np.concatenate([seen, live_items]))
        gone = live_items if live_exclude is None else live_items[live_exclude]
        excluded = sorted_sets.unique(np.concatenate([excluded, gone]))
    n_items = index.n_items
    # On a wide catalog (`is_wide`) every score below is kept over the items the request reaches
    # (thousands), never in an array over the catalog: such an array costs a millisecond per
    # pass at a million items. Below that width the arrays are the cheaper bookkeeping.
    no_items = np.empty(0, dtype=np.int64)
    knn = _ByItem(no_items, np.empty(0, dtype=np.float64))
    reasons = [_ByItem(no_items, no_items)]  # item -> the seed that explains it, strongest first
    if len(seeds):
        nbr, sim = index.similar(seeds, per_seed + 1)
        # A seed never recommends itself; it comes back only through other seeds, if allowed.
        contrib = np.where(nbr == seeds[:, None], 0.0, np.maximum(sim, 0.0)) * weights[:, None]
        items, values = nbr.ravel(), contrib.ravel()
        knn = _summed(items, values, n_items)
        # strongest seed per item (the earliest seed on a tie), for the `similar_to:` reason
        rows = np.repeat(np.arange(len(seeds)), nbr.shape[1])
        hit = values > 0
        reasons = [_ByItem(*_strongest(n_items, items[hit], values[hit], rows[hit], seeds))]
    knn.zero(excluded)
    if allowed is not None:
        knn.values[~allowed[knn.items]] = 0.0
    primary = knn  # without a graph the k-NN score ranks
    lowrank = index.lowrank
    # on a wide catalog, a scorer that rates every item (the low-rank filter, ALS) scores the
    # items it proposed; this scores the others the list ends with
    outside_score: Callable[[np.ndarray], np.ndarray] | None = None
    taken = no_items
    if index.graph is not None and len(seen):
        # the graph rows of the user's items, found once: they score and, below, explain
        entries = _row_entries(index.graph, graph_seeds)
        if index.fold_in is not None:
            # the fitted vector unless the user did something since (then solved with it)
            fresh = live_items is not None and len(live_items) > 0
            als = index.fold_in
            if not als.scans:
                scored = als.scores(-1 if fresh else user, graph_seeds, strengths)
                primary = _ByItem(np.arange(n_items), scored, dense=True)
            else:
                # its best items by the longest-first scan, and what the k-NN reached
                vector = als.vector(-1 if fresh else user, graph_seeds, strengths)
                more = als.top(vector, (3 * n) // 4, sorted_sets.unique(excluded), allowed)
                reached_items = sorted_sets.union(knn.items, more)
                primary = _ByItem(reached_items, als.at(vector, reached_items))
                outside_score = partial(als.at, vector)
        else:
            primary = _graph_scores(index, entries, graph_weights, knn.items)
            if lowrank is not None and not lowrank.scans:
                primary.values += lowrank.scores(graph_seeds, graph_weights)
            elif lowrank is not None:
                # the filter's best items (beside what the graph reaches) join the scored ones:
                # what it leaves out scores below all of them, so no top item is missed
                query = lowrank.query(graph_seeds, graph_weights)
                skip = sorted_sets.union(primary.items, excluded)
                more = lowrank.top(query, (3 * n) // 4, skip, allowed)
                graph_part = primary
                primary = _ByItem(sorted_sets.union(primary.items, more), np.empty(0))
                primary.values = graph_part.at(primary.items) + lowrank.at(query, primary.items)
                outside_score = partial(lowrank.at, query)
        primary.zero(excluded)
        if allowed is not None:
            primary.values[~allowed[primary.items]] = 0.0
        if index.fold_in is not None:
            # ALS scores every item, below zero too: its best ones rank whatever their sign, as
            # validation ranks them (a graph's zero means "not reached" and stays out)
            eligible = ~within(primary.items, excluded, n_items)
            if allowed is not None:
                eligible &= allowed[primary.items]
        else:
            eligible = primary.values > 0
        taken = _best_first(primary.items[eligible], primary.values[eligible], (3 * n) // 4)
        # items proposed by the graph alone: the history item with the strongest weight explains
        lone = taken[~reasons[0].where(taken)[0]]
        if len(lone):
            pos, cols, which = entries
            # only a positive weight explains (a negative one says "not taken with it")
            keep = within(cols, lone, n_items) & (index.graph.data[pos] > 0)
            graph_weight = index.graph.data[pos[keep]]
            reasons.append(_ByItem(*_strongest(n_items, cols[keep], graph_weight, which[keep],
                                               graph_seeds)))  # fmt: skip
        if index.fold_in is not None and len(lone):
            # what ALS proposes and no neighbour row explains: the history item closest to it
            # in ALS's item factors, where one is (a positive inner product), not `popular`
            lone = lone[~reasons[-1].where(lone)[0]]
            f = index.fold_in.factors
            affinity = f[lone] @ f[graph_seeds].T
            closest = np.argmax(affinity, axis=1) if len(lone) else no_items
            near = affinity[np.arange(len(lone)), closest] > 0
            order = np.argsort(lone[near])  # a _ByItem holds its items ascending
            reasons.append(_ByItem(lone[near][order], graph_seeds[closest[near]][order]))
    proposed = knn.values > 0
    by_knn, knn_values = knn.items[proposed], knn.values[proposed]
    if len(taken):
        fresh_knn = ~within(by_knn, taken, n_items)
        by_knn, knn_values = by_knn[fresh_knn], knn_values[fresh_knn]
    by_knn = _best_first(by_knn, knn_values, n - len(taken))
    reached = np.concatenate([taken, by_knn])
    reached = reached[np.argsort(-primary.at(reached), kind="stable")]
    fill = index.popular(n - len(reached), np.concatenate([excluded, reached]), allowed)
    items = np.concatenate([reached, fill]).astype(np.int64)
    scores = primary.at(items)
    if outside_score is not None:
        # popular top-ups outside the scored items: the scorer's score, as every item has one
        outside = ~primary.where(items)[0]
        scores[outside] = outside_score(items[outside])
    explained = np.full(len(items), -1, dtype=np.int64)
    for by in reasons:
        held, pos = by.where(items)
        held &= explained < 0
        explained[held] = by.values[pos[held]]
    return SearchResult(
        items=items,
        scores=scores.astype(np.float32),
        similarity=knn.at(items).astype(np.float32),
        seeds=explained,
    )


def _graph_scores(
    index: CandidateIndex,
    entries: tuple[np.ndarray, np.ndarray, np.ndarray],
    weights: np.ndarray,
    also: np.ndarray,
) -> _ByItem:
    """The graph's score: sum over r of weights[r] * graph[rows[r]] (`_row_entries`), over the
    items it reaches and `also` (at zero) on a wide catalog, over every item on a narrow one."""
    assert index.graph is not None
    pos, cols, which = entries
    w = np.asarray(weights, dtype=np.float64)[which]
    lowrank = index.lowrank
    narrow = lowrank is not None and not lowrank.scans  # it scores every item: so does the sum
    summed = _summed(cols, index.graph.data[pos] * w, index.n_items, dense=narrow or None)
    if summed.dense:
        return summed
    items = sorted_sets.union(summed.items, also)
    out = np.zeros(len(items), dtype=np.float64)
    out[np.searchsorted(items, summed.items)] = summed.values
    return _ByItem(items, out)


def _summed(
    items: np.ndarray, values: np.ndarray, n_items: int, dense: bool | None = None
) -> _ByItem:
    """`values` summed per item, in entry order as one bincount over the catalog sums them: over
    the catalog (`dense`, by default on a catalog that is not wide), else over the items
    present."""
    if dense or (dense is None and not is_wide(n_items)):
        summed = np.bincount(items, weights=values, minlength=n_items).astype(np.float64)
        return _ByItem(np.arange(n_items), summed, dense=True)
    return _ByItem(*sorted_sets.sums(items, values))
