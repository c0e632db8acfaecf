"""What the candidate stage tells of items: the most taken (GET /popular) and any by id (POST
/items), with title, category and price."""

from __future__ import annotations

from services.candidate.catalog import catalog_items, popular_items
from shared.training.params import TrainParams
from shared.training.pipeline import build_catalog, stage_one
from tests.shared.ml.conftest import blocks_dataset


def test_popular_items_are_the_most_taken_with_what_a_page_shows() -> None:
    data = blocks_dataset()
    end = float(data.interactions["ts"].max()) + 1
    model = stage_one(data, build_catalog(data), end, TrainParams(embedding_dim=4))
    items = popular_items(model, 5)
    assert len(items) == 5
    assert items[0].product == "P20"  # taken by every user of the dataset
    assert (items[0].title, items[0].category, items[0].price) == ("item 20", "a", 50.0)
    scores = [i.score for i in items]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert all(i.reason == "popular" and i.age is None for i in items)
    assert len({i.product for i in items}) == 5
    assert len(popular_items(model, 1000)) == len(model.catalog.items.ids)  # capped by the catalog


def test_catalog_items_are_the_known_ones_in_the_order_asked() -> None:
    data = blocks_dataset()
    end = float(data.interactions["ts"].max()) + 1
    model = stage_one(data, build_catalog(data), end, TrainParams(embedding_dim=4))
    items = catalog_items(model, ["P20", "nope", "P1", "P20"])
    assert [i.product for i in items] == ["P20", "P1", "P20"]  # unknown ids left out
    assert (items[0].title, items[0].category, items[0].price) == ("item 20", "a", 50.0)
    assert items[1].title == "item 1"
    assert catalog_items(model, ["nope"]) == []
