"""What the shop wrote since the dataset was made (live catalog, profiles, erasures), merged
into the training data."""

from __future__ import annotations

import pandas as pd

from services.trainer.erasure import without_erased
from services.trainer.live_data import with_live_catalog, with_profiles
from shared.datasets.base import Dataset
from shared.live_catalog import LiveItem
from shared.users import UserRecord, user_hash


def _data() -> Dataset:
    return Dataset(
        "d",
        pd.DataFrame(
            {
                "user_id": ["U1", "U1", "U2"],
                "product_id": ["P1", "P2", "P2"],
                "rating": [1.0, 1.0, 1.0],
                "ts": [1, 2, 3],
            }
        ),
        pd.DataFrame(
            {
                "product_id": ["P1", "P2"],
                "title": ["one", "two"],
                "category": ["a", "b"],
                "price": [1.0, 2.0],
            }
        ),
        pd.DataFrame({"user_id": ["U1", "U2"], "age": [30.0, 40.0], "segment": ["s", "s"]}),
    )


def test_live_records_win_new_products_join_deleted_ones_go() -> None:
    live = {
        "P1": LiveItem(product="P1", title="one, renamed", category="a", price=9.0),
        "N1": LiveItem(product="N1", title="brand new", category="b", price=None),
    }
    merged = with_live_catalog(_data(), live, {"P2"})
    items = merged.items.set_index("product_id")
    assert sorted(items.index) == ["N1", "P1"]
    assert items.loc["P1", "title"] == "one, renamed" and items.loc["P1", "price"] == 9.0
    assert items.loc["N1", "category"] == "b" and items["price"].isna()["N1"]
    assert merged.interactions["product_id"].tolist() == ["P1"]  # P2's interactions went too


def test_no_live_catalog_changes_nothing() -> None:
    data = _data()
    assert with_live_catalog(data, {}, set()) is data


def test_profiles_win_and_new_users_join() -> None:
    profiles = [
        UserRecord(user="U1", age=None, segment="gold", updated_at=1.0),
        UserRecord(user="U9", age=25.0, segment="new", updated_at=1.0),
    ]
    users = with_profiles(_data(), profiles).users.set_index("user_id")
    assert users.loc["U1", "age"] == 30.0 and users.loc["U1", "segment"] == "gold"
    assert users.loc["U9", "age"] == 25.0 and sorted(users.index) == ["U1", "U2", "U9"]


def test_erased_users_leave_the_training_data() -> None:
    data = without_erased(_data(), {user_hash("U1")})
    assert data.interactions["user_id"].tolist() == ["U2"]
    assert data.users["user_id"].tolist() == ["U2"]
    assert without_erased(_data(), set()).interactions.shape[0] == 3
