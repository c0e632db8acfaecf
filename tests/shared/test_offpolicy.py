"""The off-policy estimate on a simulated log: uniform exploration draws over a catalog, users
whose click probabilities the test knows. It recovers each candidate policy's true slot click
rate, ranks a good policy above a weak one, and refuses to answer without support."""

from __future__ import annotations

import numpy as np

from shared.offpolicy import Draw, estimate

USERS, ITEMS, M = 300, 200, 10


def _world(seed: int) -> tuple[np.ndarray, list[Draw]]:
    rng = np.random.default_rng(seed)
    # each user likes a few items a lot, the rest a little
    click = rng.uniform(0.0, 0.05, size=(USERS, ITEMS))
    for u in range(USERS):
        click[u, rng.choice(ITEMS, size=15, replace=False)] = rng.uniform(0.3, 0.6, size=15)
    draws = []
    for _ in range(20_000):
        u, i = int(rng.integers(USERS)), int(rng.integers(ITEMS))
        draws.append(Draw(f"u{u}", f"p{i}", 1 / ITEMS, bool(rng.random() < click[u, i])))
    return click, draws


def _truth(click: np.ndarray, top: dict[str, list[str]]) -> float:
    return float(np.mean([np.mean([click[int(u[1:]), int(p[1:])] for p in top[u]])
                          for u in top]))  # fmt: skip


def test_it_recovers_the_true_rates_and_ranks_good_above_weak() -> None:
    click, draws = _world(3)
    good = {f"u{u}": [f"p{i}" for i in np.argsort(-click[u])[:M]] for u in range(USERS)}
    popular = np.argsort(-click.mean(axis=0))[:M]
    weak = {f"u{u}": [f"p{i}" for i in popular] for u in range(USERS)}
    g, w = estimate(draws, good, M), estimate(draws, weak, M)
    assert g.enough_support and w.enough_support and g.snips is not None and w.snips is not None
    print(f"good: snips {g.snips:.3f} (truth {_truth(click, good):.3f}, {g.note}); "
          f"weak: snips {w.snips:.3f} (truth {_truth(click, weak):.3f})")  # fmt: skip
    assert g.snips > w.snips
    assert abs(g.snips - _truth(click, good)) < 0.05
    assert abs(w.snips - _truth(click, weak)) < 0.02
    assert g.ips is not None and abs(g.ips - _truth(click, good)) < 0.08


def test_without_support_it_says_so_instead_of_a_number() -> None:
    _, draws = _world(4)
    elsewhere = {f"u{u}": [f"never-shown-{j}" for j in range(M)] for u in range(USERS)}
    got = estimate(draws, elsewhere, M)
    assert not got.enough_support and got.snips is None and got.ips is None
    assert got.matches == 0 and "too little support" in got.note
    assert not estimate([], {}, M).enough_support
