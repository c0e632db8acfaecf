"""Stage one's request-time search: a user's items -> neighbours merged, scored item positions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shared.ml.interactions import DAY, UserItemStats
from shared.ml.stage_one.index import CandidateIndex, member_mask

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


def _rows_dot(
    m: sp.csr_matrix, entries: tuple[np.ndarray, np.ndarray, np.ndarray], weights: np.ndarray
) -> np.ndarray:
    """sum over r of weights[r] * m[rows[r]], dense (float64), from `_row_entries(m, rows)`."""
    pos, cols, which = entries
    w = np.asarray(weights, dtype=np.float64)[which]
    dot = np.bincount(cols, weights=m.data[pos] * w, minlength=m.shape[1])
    return dot.astype(np.float64, copy=False)  # bincount of no entries is int64 even so


def _strongest(
    best: np.ndarray, items: np.ndarray, values: np.ndarray, rows: np.ndarray, seeds: np.ndarray
) -> None:
    """best[item] = seeds[row] of the item's largest value (the lowest row on a tie)."""
    if not len(items):
        return
    if 16 * len(items) > len(best):  # a small catalog: two arrays as wide as it are cheaper
        top = np.full(len(best), -np.inf)
        np.maximum.at(top, items, values)
        win = values == top[items]
        low = np.full(len(best), len(rows))
        np.minimum.at(low, items[win], rows[win])
        has = low < len(rows)
        best[has] = seeds[low[has]]
        return
    # one sort of the entries, not two catalog-wide arrays: a request's entries are thousands
    order = np.lexsort((rows, -values, items))
    items, rows = items[order], rows[order]
    first = np.ones(len(items), dtype=bool)
    first[1:] = items[1:] != items[:-1]
    best[items[first]] = seeds[rows[first]]


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
        seen = np.union1d(seen, live_items)
        gone = live_items if live_exclude is None else live_items[live_exclude]
        excluded = np.union1d(excluded, gone)
    scores: np.ndarray = np.zeros(index.n_items, dtype=np.float64)
    best = np.full(index.n_items, -1, dtype=np.int64)
    if len(seeds):
        nbr, sim = index.similar(seeds, per_seed + 1)
        # A seed never recommends itself; it comes back only through other seeds, if allowed.
        contrib = np.where(nbr == seeds[:, None], 0.0, np.maximum(sim, 0.0)) * weights[:, None]
        # bincount sums in the same order np.add.at would, at a fraction of its cost
        scores = np.bincount(nbr.ravel(), weights=contrib.ravel(), minlength=index.n_items)
        # strongest seed per item (the earliest seed on a tie), for the `similar_to:` reason
        rows = np.repeat(np.arange(len(seeds)), nbr.shape[1])
        items, values = nbr.ravel(), contrib.ravel()
        hit = values > 0
        _strongest(best, items[hit], values[hit], rows[hit], seeds)
    scores[excluded] = 0.0
    if allowed is not None:
        scores[~allowed] = 0.0
    primary = scores
    taken = np.empty(0, dtype=np.int64)
    entries = None
    if index.graph is not None and len(seen):
        # the graph rows of the user's items, found once: they score and, below, explain
        entries = _row_entries(index.graph, graph_seeds)
        if index.fold_in is not None:
            # the fitted vector unless the user did something since (then solved with it)
            fresh = live_items is not None and len(live_items) > 0
            primary = index.fold_in.scores(-1 if fresh else user, graph_seeds, strengths)
        else:
            primary = _rows_dot(index.graph, entries, graph_weights)
        if index.lowrank is not None:
            primary += index.lowrank.scores(graph_seeds, graph_weights)
        primary[excluded] = 0.0
        if allowed is not None:
            primary[~allowed] = 0.0
        if index.fold_in is not None:
            # ALS scores every item, below zero too: its best ones rank whatever their sign, as
            # validation ranks them (a graph's zero means "not reached" and stays out)
            eligible = ~member_mask(excluded, index.n_items)
            if allowed is not None:
                eligible &= allowed
            by_graph = np.flatnonzero(eligible)
        else:
            by_graph = np.flatnonzero(primary > 0)
        taken = _best_first(by_graph, primary[by_graph], (3 * n) // 4)
    by_knn = np.flatnonzero(scores > 0)
    by_knn = by_knn[~member_mask(taken, index.n_items)[by_knn]]
    by_knn = _best_first(by_knn, scores[by_knn], n - len(taken))
    reached = np.concatenate([taken, by_knn])
    reached = reached[np.argsort(-primary[reached], kind="stable")]
    if entries is not None and index.graph is not None and len(taken):
        # items proposed by the graph alone: the history item with the strongest weight explains
        lone = taken[best[taken] < 0]
        if len(lone):
            pos, cols, which = entries
            keep = member_mask(lone, index.n_items)[cols]
            _strongest(best, cols[keep], index.graph.data[pos[keep]], which[keep], graph_seeds)
        if index.fold_in is not None:
            # what ALS proposes and no neighbour row explains: the history item closest to it
            # in ALS's item factors, where one is (a positive inner product), not `popular`
            lone = taken[best[taken] < 0]
            if len(lone):
                f = index.fold_in.factors
                affinity = f[lone] @ f[graph_seeds].T
                closest = np.argmax(affinity, axis=1)
                near = affinity[np.arange(len(lone)), closest] > 0
                best[lone[near]] = graph_seeds[closest[near]]
    fill = index.popular(n - len(reached), np.concatenate([excluded, reached]), allowed)
    items = np.concatenate([reached, fill]).astype(np.int64)
    return SearchResult(
        items=items,
        scores=primary[items].astype(np.float32),
        similarity=scores[items].astype(np.float32),
        seeds=best[items],
    )
