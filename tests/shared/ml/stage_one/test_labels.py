"""Item labels as side information: label groups, and the graph that counts them as more users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shared.ml.baselines import EASE
from shared.ml.interactions import IdMap, UserItemStats, user_item_stats
from shared.ml.stage_one.fit import neighbour_graph
from shared.ml.stage_one.labels import item_label_groups


def _items(rows: list[tuple[str, str | None, str | None]]) -> pd.DataFrame:
    ids, categories, tags = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "product_id": ids,
            "title": None,
            "category": pd.Series(categories, dtype="str"),
            "price": np.nan,
            "tags": pd.Series(tags, dtype="str"),
        }
    )


def test_groups_gather_categories_and_tags_under_one_name() -> None:
    items = _items(
        [
            ("a", "Drama", "Drama|Crime"),  # the category repeated as a tag counts once
            ("b", "Comedy", " Drama | Romance "),  # spaces around labels do not matter
            ("c", "Comedy", None),
            ("d", None, "Crime||"),  # empty labels are none
            ("e", "Horror", None),  # a label of one item pairs nothing
            ("zz", "Comedy", "Crime"),  # not in the catalog: ignored
        ]
    )
    groups = item_label_groups(IdMap(["a", "b", "c", "d", "e"]), items)
    # labels in name order: Comedy, Crime, Drama (Horror and Romance hold one item each)
    assert [g.tolist() for g in groups] == [[1, 2], [0, 3], [0, 1]]


def test_groups_without_a_tags_column_come_from_categories() -> None:
    items = _items([("a", "x", None), ("b", "x", None), ("c", "y", None)]).drop(columns="tags")
    groups = item_label_groups(IdMap(["c", "b", "a"]), items)
    assert [g.tolist() for g in groups] == [[1, 2]]


def test_groups_are_fitting_on_one_more_row_per_label_and_weight_unit() -> None:
    rng = np.random.default_rng(5)
    x = sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float64))
    groups = [np.array([0, 3, 4, 9]), np.array([2, 3]), np.arange(12)]
    rows = np.zeros((len(groups), 12))
    for r, g in enumerate(groups):
        rows[r, g] = 1.0
    with_groups, stacked = EASE(l2=4.0), EASE(l2=4.0)
    with_groups.fit(x, groups=groups, group_weight=3.0)
    stacked.fit(sp.vstack([x, *[sp.csr_matrix(rows)] * 3]).tocsr())  # each label row three times
    np.testing.assert_allclose(with_groups.item_weights, stacked.item_weights, rtol=1e-5)
    plain, unweighted = EASE(l2=4.0), EASE(l2=4.0)
    plain.fit(x)
    unweighted.fit(x, groups=groups, group_weight=0.0)
    np.testing.assert_array_equal(plain.item_weights, unweighted.item_weights)


def _stats(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> UserItemStats:
    u, i = (np.array(col) for col in zip(*pairs, strict=True))
    ones = np.ones(len(u))
    return user_item_stats(u, i, ones, np.arange(len(u), dtype=np.float64), n_users, n_items)


def test_labels_link_an_item_nobody_took_yet_to_its_label_mates() -> None:
    # Items 0-3 are one category, 4-7 another; users take items within a category. Item 3 is new:
    # without labels the graph cannot link it, with them its category mates lead its row.
    pairs = [(u, i) for u in range(40) for i in (range(0, 3) if u % 2 else range(4, 8))]
    stats = _stats(pairs, 40, 8)
    groups = [np.arange(0, 4), np.arange(4, 8)]
    plain = neighbour_graph(stats, 8, l2=5.0, top=7).toarray()
    assert not plain[3].any() and not plain[:, 3].any()
    labelled = neighbour_graph(stats, 8, l2=5.0, top=7, label_groups=groups, label_weight=2.0)
    g = labelled.toarray()
    assert (g[3, :3] > 0).all() and (g[:3, 3] > 0).all()
    assert g[3, :3].min() > np.abs(g[3, 4:]).max()
    assert g[0, 1] > g[0, 3] > np.abs(g[0, 4:]).max()  # taken together still beats labels alone


def test_title_words_are_labels_of_their_own_when_asked() -> None:
    items = _items([("a", "Drama", None), ("b", None, None), ("c", None, "LUNCH")])
    items["title"] = ["Drama: lunch bag RED retrospot", "LUNCH BOX 2-pack", "drama lunch"]
    ids = IdMap(["a", "b", "c"])
    assert item_label_groups(ids, items) == []  # titles are not labels unless asked
    groups = item_label_groups(ids, items, title_words=True)
    # title:DRAMA, title:LUNCH (all three, case folded); the tag LUNCH and the category Drama
    # hold one item each: title words do not mix with the shop's own labels. RED and BOX are
    # too short, 2 is no word, PACK and RETROSPOT name one item each.
    assert [g.tolist() for g in groups] == [[0, 2], [0, 1, 2]]
