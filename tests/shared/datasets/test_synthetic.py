from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy import sparse

from shared.datasets.base import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, Dataset
from shared.datasets.synthetic import (
    CATEGORIES,
    DAY,
    END_TS,
    RECENT_DAYS,
    generate,
    generate_with_tastes,
    write_seed_csv,
)
from shared.ml.metrics import evaluate_rankings

CUT = END_TS - RECENT_DAYS * DAY


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return generate()


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = generate(120, 60, 60, seed=3), generate(120, 60, 60, seed=3)
    for x, y in ((a.interactions, b.interactions), (a.items, b.items), (a.users, b.users)):
        pd.testing.assert_frame_equal(x, y)
    c = generate(120, 60, 60, seed=4)
    assert not a.interactions.equals(c.interactions)


def test_ids_columns_and_dtypes(ds: Dataset) -> None:
    assert ds.name == "synthetic"
    assert list(ds.interactions.columns) == INTERACTION_COLUMNS
    assert list(ds.items.columns) == ITEM_COLUMNS
    assert list(ds.users.columns) == USER_COLUMNS
    assert ds.users["user_id"].tolist() == [f"U{i}" for i in range(1, 601)]
    assert ds.items["product_id"].tolist() == [f"P{i}" for i in range(1, 301)]
    assert ds.interactions["ts"].dtype == np.int64
    assert ds.interactions["rating"].dtype == np.float64
    assert ds.items["price"].dtype == np.float64
    assert ds.users["age"].dtype == np.float64
    assert set(ds.interactions["user_id"]) <= set(ds.users["user_id"])
    assert set(ds.interactions["product_id"]) <= set(ds.items["product_id"])
    assert (ds.interactions["rating"] > 0).all()
    assert (ds.items["price"] > 0).all()
    assert ds.users["age"].between(18, 75).all()
    assert ds.items["category"].nunique() == 8
    assert ds.users["segment"].nunique() == 5
    assert ds.items["title"].str.len().gt(0).all()
    ts = ds.interactions["ts"]
    assert ts.min() >= END_TS - 120 * DAY and ts.max() < END_TS


def test_activity_volume_and_split_coverage(ds: Dataset) -> None:
    per_user = ds.interactions.groupby("user_id").size()
    assert 15 <= per_user.mean() <= 40
    assert per_user.max() > 4 * per_user.median()  # heavy users exist
    before = set(ds.interactions.loc[ds.interactions["ts"] < CUT, "user_id"])
    after = set(ds.interactions.loc[ds.interactions["ts"] >= CUT, "user_id"])
    assert len(before & after) >= 0.8 * len(ds.users)


def test_segments_prefer_categories(ds: Dataset) -> None:
    joined = ds.interactions.merge(ds.users, on="user_id").merge(ds.items, on="product_id")
    share = pd.crosstab(joined["segment"], joined["category"], normalize="index")
    # uniform would be 1/8 per category; every segment has a clear favourite
    assert (share.max(axis=1) > 2.0 / 8).all()


def test_young_users_buy_cheaper_within_category(ds: Dataset) -> None:
    joined = ds.interactions.merge(ds.users, on="user_id").merge(ds.items, on="product_id")
    log_price = np.log(joined["price"])
    rel_price = log_price - log_price.groupby(joined["category"]).transform("mean")
    young = rel_price[joined["age"] < 30].mean()
    old = rel_price[joined["age"] >= 50].mean()
    assert old - young > 0.2


def _split(ds: Dataset) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    train = ds.interactions[ds.interactions["ts"] < CUT]
    test = ds.interactions[ds.interactions["ts"] >= CUT]
    seen = {str(u): set(p) for u, p in train.groupby("user_id")["product_id"]}
    relevant = {
        str(u): set(p) - seen[str(u)]
        for u, p in test.groupby("user_id")["product_id"]
        if str(u) in seen
    }
    return train, relevant


def test_cooccurrence_beats_popularity_on_last_window(ds: Dataset) -> None:
    train, relevant = _split(ds)
    products = ds.items["product_id"].to_numpy()
    users = ds.users["user_id"].to_numpy()
    rows = pd.Categorical(train["user_id"], categories=users).codes
    cols = pd.Categorical(train["product_id"], categories=products).codes
    x = sparse.csr_matrix((np.ones(len(train)), (rows, cols)), shape=(len(users), len(products)))
    x.data[:] = 1.0  # binary: repeats do not count twice
    cooc = (x.T @ x).toarray()
    norms = np.sqrt(np.diag(cooc)) + 1e-9
    sim = cooc / norms[:, None] / norms[None, :]
    np.fill_diagonal(sim, 0.0)
    popularity = np.asarray(x.sum(axis=0)).ravel()

    k = 10
    by_pop: dict[str, list[str]] = {}
    by_cooc: dict[str, list[str]] = {}
    for user in relevant:
        history = x[int(np.flatnonzero(users == user)[0])].toarray().ravel()
        for scores, out in ((popularity.astype(float), by_pop), (sim @ history, by_cooc)):
            scores = np.where(history > 0, -np.inf, scores)  # only new items can be relevant
            out[user] = products[np.argsort(-scores, kind="stable")[:k]].tolist()

    pop = evaluate_rankings(by_pop, relevant, k, len(products))
    knn = evaluate_rankings(by_cooc, relevant, k, len(products))
    assert sum(1 for r in relevant.values() if r) >= 0.8 * len(users)
    assert knn[f"ndcg@{k}"] >= 1.3 * pop[f"ndcg@{k}"]
    assert knn[f"recall@{k}"] > pop[f"recall@{k}"]


def test_seed_csv(ds: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "seed.csv"
    write_seed_csv(ds, path)
    frame = pd.read_csv(path)
    expected = ["user_id", "product_id", "rating", "age", "price", "category", "timestamp"]
    assert list(frame.columns) == expected
    assert len(frame) == len(ds.interactions)
    assert frame[expected].notna().all().all()
    parsed = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    assert (seconds.to_numpy() == ds.interactions["ts"].to_numpy()).all()
    assert str(frame["timestamp"].iloc[0]).endswith("Z")


def _digest(ds: Dataset) -> str:
    h = hashlib.sha256()
    for frame in (ds.interactions, ds.items, ds.users):
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()[:16]


def test_the_tastes_cost_no_draw_and_the_data_stays_what_it_was() -> None:
    """Asking for the hidden tastes changes nothing in the data; the digests were taken before
    `generate_with_tastes` existed (models, tests and the docs' figures rest on this data)."""
    for kwargs, digest in (
        ({}, "2ccc80ea5d8b8be3"),
        ({"n_users": 300, "n_products": 150, "n_days": 90, "n_new_products": 10},
         "86275a45220863df"),
        ({"n_users": 50, "n_products": 40, "n_days": 30, "seed": 7, "n_new_products": 3},
         "d3c32075eed28a20"),
    ):  # fmt: skip
        data, tastes = generate_with_tastes(**kwargs)
        assert _digest(data) == _digest(generate(**kwargs)) == digest
        names = [CATEGORIES[c][0] for c in tastes.category]
        assert names == data.items["category"].tolist()  # new arrivals too
        assert tastes.product_ids == tuple(data.items["product_id"])
        assert tastes.user_ids == tuple(data.users["user_id"])
        assert int(tastes.new.sum()) == kwargs.get("n_new_products", 0)
        assert np.allclose(tastes.taste.sum(axis=1), 1.0)


def test_first_choices_follow_the_choice_probability() -> None:
    """Each user's first event is a fresh draw: over many users, how often each product comes
    first matches the summed choice probabilities (chi-square), and a law without the price fit
    does not."""
    data, tastes = generate_with_tastes(n_users=8000, n_products=40, n_days=30, seed=11)
    firsts = data.interactions.groupby("user_id", sort=False)["product_id"].first()
    users = np.array([tastes.user_index()[u] for u in firsts.index])
    n_products = len(tastes.product_ids)
    p = tastes.choice_probability(users[:, None], np.arange(n_products)[None, :])
    assert np.allclose(p.sum(axis=1), 1.0)
    observed = np.bincount([tastes.product_index()[x] for x in firsts], minlength=n_products)

    def chi2(expected: npt.NDArray[np.float64]) -> float:
        return float(((observed - expected) ** 2 / expected).sum())

    fits = chi2(p.sum(axis=0))
    flat = replace(tastes, sensitivity=np.zeros(len(tastes.user_ids)))
    no_price = chi2(flat.choice_probability(users[:, None], np.arange(n_products)[None, :]).sum(0))
    # 39 degrees of freedom: 80 is beyond the 0.9999 quantile (~77)
    print(f"chi-square, 39 degrees of freedom: {fits:.1f} (the law), {no_price:.1f} (no price fit)")
    assert fits < 80 < no_price, (fits, no_price)
