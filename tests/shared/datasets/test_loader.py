from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.datasets import report as report_module
from shared.datasets.loader import DatasetError, load_dataset, load_with_report
from shared.schemas.training import CsvOptions, TrainRequest, parse_event_weights
from tests.conftest import DATA_DIR


def request(**fields: object) -> TrainRequest:
    return TrainRequest.model_validate(fields)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "shop").mkdir(parents=True)
    (folder / "shop" / "events.csv").write_text(
        "customer,sku,stars,when\nc1,p1,5,1700000000\nc2,p1,4,1700000100\n"
    )
    (folder / "shop" / "items.csv").write_text("sku,title,price\np1,Lamp,9.5\n")
    return folder


def test_dataset_error_is_the_one_the_report_module_defines() -> None:
    # Callers catching shared.datasets.loader.DatasetError must see the loaders' errors.
    assert DatasetError is report_module.DatasetError
    assert issubclass(DatasetError, ValueError)


def test_synthetic_still_works(tmp_path: Path) -> None:
    req = request(params={"n_users": 20, "n_products": 15, "n_days": 30})
    data, report = load_with_report(req, tmp_path)
    assert data.name == "synthetic" and report.rows_kept == len(data.interactions) > 0


@pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"team data folder {DATA_DIR} absent")
def test_default_paths_under_the_data_root() -> None:
    ml = load_dataset(request(dataset="movielens-100k"), DATA_DIR)
    assert ml.name == "movielens-100k" and len(ml.interactions) == 100_000
    retail, report = load_with_report(request(dataset="online-retail"), DATA_DIR)
    assert retail.name == "online-retail" and len(retail.interactions) == 397_884
    assert report.rows_read == 541_909
    # A relative data_path is read under the data root, a file inside MovieLens means its folder.
    ml_file = request(dataset="movielens-100k", data_path="movielens-100k/u.data")
    assert len(load_dataset(ml_file, DATA_DIR).users) == 943


def test_csv_relative_path_and_options(root: Path) -> None:
    req = request(
        dataset="csv",
        data_path="shop/events.csv",
        csv={
            "user_col": "customer",
            "item_col": "sku",
            "rating_col": "stars",
            "time_col": "when",
            "items_path": "shop/items.csv",
        },
    )
    data, report = load_with_report(req, root)
    assert list(data.interactions["user_id"]) == ["c1", "c2"]
    assert list(data.interactions["ts"]) == [1_700_000_000, 1_700_000_100]
    assert data.items.set_index("product_id").loc["p1", "title"] == "Lamp"
    assert report.has_time


def test_csv_default_columns(root: Path) -> None:
    (root / "plain.csv").write_text("user_id,product_id\nu,p\n")
    data, report = load_with_report(request(dataset="csv", data_path="plain.csv"), root)
    assert len(data.interactions) == 1 and not report.has_time


def test_csv_without_a_header_line(root: Path) -> None:
    (root / "u.data").write_text("u1\tp1\t4\nu2\tp2\t5\n")
    csv = {"header": False, "user_col": "1", "item_col": "2", "rating_col": "3"}
    data, report = load_with_report(request(dataset="csv", data_path="u.data", csv=csv), root)
    assert list(data.interactions["user_id"]) == ["u1", "u2"]
    assert list(data.interactions["rating"]) == [4.0, 5.0] and report.rows_kept == 2
    # An item table without a header line either: its positions name its attributes, and may
    # be the events' positions too ("2": the events' item column, the table's title).
    (root / "u.item").write_text("p1|Lamp|home\np2|Chair|home\n")
    csv |= {"items_path": "u.item", "title_col": "2", "category_col": "3"}
    data = load_dataset(request(dataset="csv", data_path="u.data", csv=csv), root)
    assert list(data.items["title"]) == ["Lamp", "Chair"]
    assert list(data.items["category"]) == ["home", "home"]
    # still one role per column within each file
    with pytest.raises(ValidationError, match="one role"):
        CsvOptions.model_validate(csv | {"category_col": "2"})
    with pytest.raises(ValidationError, match="one role"):
        CsvOptions.model_validate(csv | {"segment_col": "2"})
    with pytest.raises(ValidationError, match="one role"):
        CsvOptions.model_validate(csv | {"items_path": None})


def test_paths_must_stay_inside_the_data_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("user_id,product_id\nu,p\n")
    for path in (str(outside), "../outside.csv", "shop/../../outside.csv"):
        with pytest.raises(DatasetError, match="is outside the data folder"):
            load_dataset(request(dataset="csv", data_path=path), root)
    # Local callers (the CLI) may name any file.
    data = load_dataset(request(dataset="csv", data_path=str(outside)), root, allow_outside=True)
    assert len(data.interactions) == 1
    sneaky = request(
        dataset="csv", data_path="shop/events.csv", csv={"items_path": "../outside.csv"}
    )
    with pytest.raises(DatasetError, match="is outside the data folder"):
        load_dataset(sneaky, root)


def test_unusable_requests_give_clear_errors(root: Path) -> None:
    with pytest.raises(DatasetError, match="needs data_path"):
        load_dataset(request(dataset="csv"), root)
    with pytest.raises(DatasetError, match=r"'shop/nope\.csv' does not exist"):
        load_dataset(request(dataset="csv", data_path="shop/nope.csv"), root)
    with pytest.raises(DatasetError, match="the default location under"):
        load_dataset(request(dataset="online-retail"), root)
    with pytest.raises(DatasetError, match="csv options only apply to dataset 'csv'"):
        load_dataset(request(dataset="movielens-100k", csv={}), root)
    with pytest.raises(DatasetError, match="shop: is a folder, expected a file"):
        load_dataset(request(dataset="online-retail", data_path="shop"), root)
    with pytest.raises(DatasetError, match=r"shop: u\.data is missing"):
        load_dataset(request(dataset="movielens-100k", data_path="shop/events.csv"), root)
    with pytest.raises(DatasetError, match="not usable"):
        load_dataset(request(dataset="csv", data_path="bad\x00name.csv"), root)
    with pytest.raises(DatasetError, match=r"missing columns \['user_id', 'product_id'\]"):
        load_dataset(request(dataset="csv", data_path="shop/events.csv"), root)


def test_csv_options_are_validated() -> None:
    assert CsvOptions().user_col == "user_id"
    for bad in (
        {"user_col": ""},
        {"user_col": "x" * 129},
        {"item_col": "sku\nINFO forged log line"},
        {"rating_col": "user_id"},  # the same column cannot be two things
        {"items_path": "x" * 4097},
        {"unknown": "field"},
    ):
        with pytest.raises(ValidationError):
            CsvOptions.model_validate(bad)


def test_ids_the_api_cannot_carry_are_dropped_and_reported(tmp_path: Path) -> None:
    long_user = "u" * 129
    (tmp_path / "ints.csv").write_text(
        "user_id,product_id\n"
        "c1,BANK CHARGES\n"  # a real Online Retail code: spaces inside are fine
        "zoë@example.com,85123A\n"  # so are e-mail addresses and accents, for users too
        f"{long_user},85123A\n"  # longer than any id the API accepts
        'c2,"a,b"\n'  # a comma would split `exclude=` lists
        '"c\t3",85123A\n'  # control characters are not printable text
    )
    data, report = load_with_report(request(dataset="csv", data_path="ints.csv"), tmp_path)
    assert sorted(data.interactions["product_id"]) == ["85123A", "BANK CHARGES"]
    assert sorted(data.interactions["user_id"]) == ["c1", "zoë@example.com"]
    assert report.rows_kept == 2
    assert sum(report.dropped.values()) == 3
    assert any("product id not usable by the API" in n and "'a,b'" in n for n in report.notes)
    assert any("user id not usable by the API" in n for n in report.notes)


def test_sessions_need_times(root: Path) -> None:
    csv = {"user_col": "customer", "item_col": "sku"}
    sessions = {"graph_session_minutes": 1}
    req = request(dataset="csv", data_path="shop/events.csv", csv=csv, params=sessions)
    with pytest.raises(DatasetError, match="graph_session_minutes needs interaction times"):
        load_with_report(req, root)
    timed = request(
        dataset="csv", data_path="shop/events.csv", csv={**csv, "time_col": "when"}, params=sessions
    )
    data, report = load_with_report(timed, root)
    assert report.has_time and len(data.interactions) == 2


def test_csv_event_types_default_to_the_live_events_weights(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(
        "user,item,type\nu1,p1,view\nu1,p2,purchase\nu2,p1,hide\nu2,p2,addtocart\n"
        "u2,p3,transaction\n"
    )
    csv = {"user_col": "user", "item_col": "item", "event_col": "type"}
    data, report = load_with_report(
        request(dataset="csv", data_path="events.csv", csv=csv), tmp_path
    )
    # RECSYS_EVENT_WEIGHTS' defaults: view 1, purchase 5, hide 0, add_to_cart 3 (which
    # "addtocart" is spelled like); "transaction" is not among them
    assert data.interactions["rating"].tolist() == [1.0, 5.0, 3.0]
    assert report.n_malformed == 1 and "'transaction'" in report.malformed[0].reason
    own = request(
        dataset="csv",
        data_path="events.csv",
        csv={**csv, "event_weights": {"view": 1, "purchase": 4, "addtocart": 2, "transaction": 6}},
    )
    assert load_dataset(own, tmp_path).interactions["rating"].tolist() == [1.0, 4.0, 2.0, 6.0]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"event_weights": {"view": 1}}, "need event_col"),
        ({"event_col": "type", "event_weights": {}}, "at least 1"),
        ({"event_col": "type", "event_weights": {"view": float("inf")}}, "finite"),
        ({"event_col": "type", "event_weights": {"vi\new": 1}}, "pattern"),
        ({"event_col": "user_id"}, "one role"),
    ],
)
def test_csv_event_options_are_validated(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        CsvOptions.model_validate(fields)


def test_event_weights_as_people_type_them() -> None:
    assert parse_event_weights(" view=1, addtocart = 3,transaction=5.5") == {
        "view": 1.0,
        "addtocart": 3.0,
        "transaction": 5.5,
    }
    for bad in ("view", "view:1", "=1", "view=many", "view=nan", "view=1,"):
        with pytest.raises(ValueError, match="expected TYPE=WEIGHT"):
            parse_event_weights(bad)
