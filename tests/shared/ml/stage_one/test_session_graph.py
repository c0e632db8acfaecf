"""The neighbour graph's session weighting: items taken in one sitting count as closer."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shared.ml.baselines import EASE
from shared.ml.interactions import UserItemStats, user_item_stats
from shared.ml.stage_one.fit import neighbour_graph, sessions

MINUTE = 60.0
DAY = 86_400.0


def _stats(rows: list[tuple[int, int, float]], n_users: int, n_items: int) -> UserItemStats:
    u, i, ts = (np.array(col) for col in zip(*rows, strict=True))
    return user_item_stats(u, i, np.ones(len(u)), ts.astype(np.float64), n_users, n_items)


def test_sessions_split_at_gaps_longer_than_the_window_and_between_users() -> None:
    rows = [
        (0, 2, 500 * MINUTE),  # rows out of time order: sessions follow time, not row order
        (0, 0, 0.0),
        (0, 1, 2 * MINUTE),
        (0, 3, 504 * MINUTE),  # 4 minutes after item 2: a gap, so a session of its own
        (1, 3, 0.0),  # user 1 at user 0's times: never in user 0's sessions
        (1, 2, 1 * MINUTE),
    ]
    z = sessions(_stats(rows, 2, 4), 4, 3 * MINUTE).toarray()
    assert sorted(map(tuple, z.astype(int).tolist())) == [
        (0, 0, 0, 1),
        (0, 0, 1, 0),
        (0, 0, 1, 1),
        (1, 1, 0, 0),
    ]
    one_each = sessions(_stats(rows, 2, 4), 4, 0.5 * MINUTE)
    assert one_each.shape == (6, 4) and one_each.sum() == 6


def test_session_weight_pulls_items_of_one_sitting_together() -> None:
    # Every user takes item 0 with item 1 in one sitting and item 2 thirty days later: the same
    # co-occurrence counts, so only the time between them can tell 1 and 2 apart.
    rows = []
    for u in range(40):
        t = u * 1000.0
        rows += [(u, 0, t), (u, 1, t + MINUTE), (u, 2, t + 30 * DAY), (u, 3 + u % 5, t + 60 * DAY)]
    stats = _stats(rows, 40, 8)
    plain = neighbour_graph(stats, 8, l2=5.0, top=7).toarray()
    assert np.isclose(plain[0, 1], plain[0, 2])
    session = neighbour_graph(stats, 8, l2=5.0, top=7, session_minutes=5).toarray()
    assert session[0, 1] > session[0, 2] > 0 and session[1, 0] > session[2, 0]
    # with sessions shorter than a minute, no sitting holds two items: the plain graph's order
    short = neighbour_graph(stats, 8, l2=5.0, top=7, session_minutes=0.5).toarray()
    assert np.isclose(short[0, 1], short[0, 2])


def test_extra_gram_is_fitting_on_the_sessions_as_more_users() -> None:
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float64))
    z = sp.csr_matrix((rng.random((8, 12)) < 0.4).astype(np.float64))
    with_extra, stacked = EASE(l2=4.0), EASE(l2=4.0)
    with_extra.fit(x, (z.T @ z).tocsr())
    stacked.fit(sp.vstack([x, z]).tocsr())
    np.testing.assert_allclose(with_extra.item_weights, stacked.item_weights, rtol=1e-5)
