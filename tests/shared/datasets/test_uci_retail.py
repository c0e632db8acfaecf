from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from shared.datasets import uci_retail
from shared.datasets.base import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, Dataset
from shared.datasets.report import DatasetError, LoadReport, MalformedRow
from tests.conftest import DATA_DIR

REAL = DATA_DIR / "online-retail" / "online_retail.csv.gz"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


@pytest.fixture(scope="module")
def real() -> tuple[Dataset, LoadReport, float]:
    if not REAL.parent.is_dir():
        pytest.skip(f"team data folder {REAL.parent} absent (set RECSYS_DATA_DIR)")
    start = time.perf_counter()
    data, report = uci_retail.load(REAL)
    return data, report, time.perf_counter() - start


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_real_file_counts_match_the_published_numbers(
    real: tuple[Dataset, LoadReport, float],
) -> None:
    data, report, _ = real
    assert len(data.interactions) == 397_884
    assert data.interactions["user_id"].nunique() == len(data.users) == 4_338
    assert data.interactions["product_id"].nunique() == len(data.items) == 3_665
    assert report.rows_read == 541_909
    assert report.rows_kept == 397_884
    assert report.dropped == {
        "cancellation": 9_288,
        "non-positive quantity (return)": 1_336,
        "non-positive price": 1_181,
        "no CustomerID (guest)": 132_220,
    }
    assert report.n_malformed == 0 and report.malformed == []
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())


def test_real_file_tables_follow_the_canonical_schema(
    real: tuple[Dataset, LoadReport, float],
) -> None:
    data, _, _ = real
    ints, items, users = data.interactions, data.items, data.users
    assert list(ints.columns) == INTERACTION_COLUMNS
    assert list(items.columns) == ITEM_COLUMNS
    assert list(users.columns) == USER_COLUMNS
    assert ints["ts"].dtype == np.int64 and ints["rating"].dtype == np.float64
    assert (ints["rating"] == 1.0).all()
    assert ints["ts"].is_monotonic_increasing
    first = datetime(2010, 12, 1, 8, 26, tzinfo=UTC).timestamp()
    last = datetime(2011, 12, 9, 12, 50, tzinfo=UTC).timestamp()
    assert ints["ts"].min() == first and ints["ts"].max() == last
    # CustomerID is a float in the spreadsheet: no "17850.0" may leak into ids.
    assert not ints["user_id"].str.contains(".", regex=False).any()
    assert set(ints["user_id"]) == set(users["user_id"])
    assert set(ints["product_id"]) == set(items["product_id"])
    assert items["category"].isna().all()  # the data has none
    assert items["title"].notna().all() and (items["price"] > 0).all()
    assert users["age"].isna().all() and users["segment"].notna().all()


def test_real_file_attributes(real: tuple[Dataset, LoadReport, float]) -> None:
    data, _, _ = real
    item = data.items.set_index("product_id").loc["85123A"]
    assert item["title"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    user = data.users.set_index("user_id")
    assert user.loc["17850", "segment"] == "United Kingdom"
    assert user.loc["12347", "segment"] == "Iceland"


def test_real_file_loads_in_seconds(real: tuple[Dataset, LoadReport, float]) -> None:
    # ~2 s here; a per-row Python loop over the 540k lines would take far longer.
    assert real[2] < 20


def test_malformed_rows_are_reported_with_file_line_and_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path / "retail.csv",
        HEADER,
        "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom",  # line 2
        "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom",
        "",  # blank: neither a row nor an error
        '536380,22000,"TWO',  # a quoted description spanning lines 5-6
        'LINES",3,2010-12-01 09:41:00,1.5,17850.0,France',
        "536381,22001,BAD DATE,3,2010-13-45 09:41:00,1.5,17850,France",  # line 7
        "536382,22002,EXTRA,3,2010-12-01 09:41:00,1.5,17850,France,oops",  # line 8
        "536383,,NO CODE,3,12/1/2010 9:41,1.5,17850,France",  # line 9
        "536384,22003,RETURN,-3,12/1/2010 9:41,1.5,17850,France",
        "536385,22004,GUEST,3,12/1/2010 9:41,1.5,,France",
        "536386,22005,FREE,3,12/1/2010 9:41,0,17851,Spain",
        "536387,22006,QTY,x,12/1/2010 9:41,1,17851,Spain",  # line 13
        "536388,22007,US DATE,2,12/2/2010 9:41,1,17851,Spain",
    )
    data, report = uci_retail.load(path)
    assert report.malformed == [
        MalformedRow("retail.csv", 7, "unparseable InvoiceDate: '2010-13-45 09:41:00'"),
        MalformedRow("retail.csv", 8, "expected 8 fields, found 9"),
        MalformedRow("retail.csv", 9, "missing StockCode"),
        MalformedRow("retail.csv", 13, "unparseable Quantity: 'x'"),
    ]
    assert report.n_malformed == 4
    assert report.dropped == {
        "cancellation": 1,
        "non-positive quantity (return)": 1,
        "non-positive price": 1,
        "no CustomerID (guest)": 1,
    }
    assert report.rows_read == 11 == report.rows_kept + 4 + 4
    assert list(data.interactions["product_id"]) == ["85123A", "22000", "22007"]
    assert list(data.interactions["user_id"]) == ["17850", "17850", "17851"]
    # The US-style date some CSV conversions use reads the same as ISO text.
    assert data.interactions["ts"].iloc[2] == datetime(2010, 12, 2, 9, 41, tzinfo=UTC).timestamp()
    assert data.items.set_index("product_id").loc["22000", "title"] == "TWO\nLINES"
    text = report.summary()
    assert "retail.csv line 7: unparseable InvoiceDate" in text and "kept 3 of 11" in text


def test_examples_are_capped_but_all_malformed_rows_are_counted(tmp_path: Path) -> None:
    bad = [f"5{i},2200{i},X,1,not a date,1,17850,France" for i in range(30)]
    good = "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom"
    _, report = uci_retail.load(write(tmp_path / "r.csv", HEADER, *bad, good))
    assert report.n_malformed == 30 and len(report.malformed) == 20
    assert [m.line for m in report.malformed] == list(range(2, 22))


def test_title_is_the_most_frequent_description_and_price_the_median(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.csv",
        HEADER,
        "1,A1,OLD NAME,1,2011-01-01 10:00:00,1.0,1,UK",
        "2,A1,NEW NAME,1,2011-01-02 10:00:00,2.0,1,UK",
        "3,A1,NEW NAME,1,2011-01-03 10:00:00,10.0,2,France",
        "4,A1,,1,2011-01-04 10:00:00,3.0,2,France",
    )
    data, _ = uci_retail.load(path)
    item = data.items.set_index("product_id").loc["A1"]
    assert item["title"] == "NEW NAME" and item["price"] == 2.5


def test_gzip_and_xlsx_give_the_same_dataset_as_csv(tmp_path: Path) -> None:
    rows = [
        ("536365", "85123A", "WHITE HEART", 6, datetime(2010, 12, 1, 8, 26), 2.55, 17850.0, "UK"),
        ("536366", 22633, "HAND WARMER", 6, datetime(2010, 12, 1, 8, 28), 1.85, 17850.0, "UK"),
        ("C536379", "D", "Discount", -1, datetime(2010, 12, 1, 9, 41), 27.5, 14527.0, "UK"),
        ("536367", 84879, "BIRD ORNAMENT", 32, datetime(2010, 12, 1, 8, 34), 1.69, 13047.0, "UK"),
        ("536368", 22960, "JAM MAKING SET", 6, datetime(2010, 12, 1, 8, 34), 4.25, None, "UK"),
    ]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    for row in rows:
        sheet.append(list(row))
    book.save(tmp_path / "Online Retail.xlsx")
    csv_lines = [HEADER] + [
        ",".join("" if v is None else str(v) for v in row) for row in rows
    ]  # datetimes print as ISO text, customer ids as "17850.0"
    write(tmp_path / "r.csv", *csv_lines)
    with gzip.open(tmp_path / "r.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(csv_lines) + "\n")

    from_xlsx, report = uci_retail.load(tmp_path / "Online Retail.xlsx")
    from_csv, _ = uci_retail.load(tmp_path / "r.csv")
    from_gz, _ = uci_retail.load(tmp_path / "r.csv.gz")
    for other in (from_csv, from_gz):
        pd.testing.assert_frame_equal(from_xlsx.interactions, other.interactions)
        pd.testing.assert_frame_equal(from_xlsx.items, other.items)
        pd.testing.assert_frame_equal(from_xlsx.users, other.users)
    assert list(from_xlsx.users["user_id"]) == ["13047", "17850"]
    assert report.dropped == {"cancellation": 1, "no CustomerID (guest)": 1}


def test_xlsx_malformed_rows_name_the_sheet_row(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(["1", "A", "X", 1, datetime(2011, 1, 1), 1.0, 12345, "UK"])
    sheet.append([])  # blank row 3
    sheet.append(["2", "B", "Y", 1, "someday", 1.0, 12345, "UK"])  # row 4
    book.save(tmp_path / "r.xlsx")
    _, report = uci_retail.load(tmp_path / "r.xlsx")
    assert report.malformed == [MalformedRow("r.xlsx", 4, "unparseable InvoiceDate: 'someday'")]
    assert report.rows_read == 2


def test_unusable_files_raise_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        uci_retail.load(tmp_path / "absent.csv")
    with pytest.raises(DatasetError, match="the file is empty"):
        uci_retail.load(write(tmp_path / "empty.csv", ""))
    with pytest.raises(DatasetError, match=r"missing columns \['Description', 'Quantity'") as err:
        uci_retail.load(write(tmp_path / "cols.csv", "InvoiceNo,StockCode", "1,A"))
    assert "found columns ['InvoiceNo', 'StockCode']" in str(err.value)
    with pytest.raises(DatasetError, match="no purchase lines left"):
        uci_retail.load(
            write(tmp_path / "guests.csv", HEADER, "1,A,X,1,2011-01-01 10:00:00,1.0,,UK")
        )
    with pytest.raises(DatasetError, match="missing columns"):
        # Semicolons: the whole header is one column.
        uci_retail.load(write(tmp_path / "semi.csv", HEADER.replace(",", ";")))
    (tmp_path / "fake.xlsx").write_bytes(b"PK\x03\x04not really a zip")
    with pytest.raises(DatasetError, match=r"cannot be read as an \.xlsx"):
        uci_retail.load(tmp_path / "fake.xlsx")
