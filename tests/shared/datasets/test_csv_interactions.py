from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.datasets import csv_interactions, reading
from shared.datasets.base import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS
from shared.datasets.report import DatasetError, MalformedRow
from tests.conftest import DATA_DIR

RETAIL = DATA_DIR / "online-retail" / "online_retail.csv.gz"
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())


def write(path: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_ratings_and_iso_times(tmp_path: Path) -> None:
    path = write(
        tmp_path / "events.csv",
        "user,item,stars,when",
        "u1,p1,4,2024-01-01T00:00:10Z",
        "u2,p2,5,2024-01-01 01:00:00+01:00",  # = T0 in UTC
        "u1,p2,3.5,2024-01-01T00:00:05",  # no zone: read as UTC
    )
    data, report = csv_interactions.load(path, "user", "item", "stars", "when", None)
    ints = data.interactions
    assert list(ints.columns) == INTERACTION_COLUMNS
    assert list(data.items.columns) == [*ITEM_COLUMNS, "tags"]
    assert list(data.users.columns) == USER_COLUMNS
    assert list(ints["ts"]) == [T0, T0 + 5, T0 + 10]  # sorted by time
    assert list(ints["rating"]) == [5.0, 3.5, 4.0]
    assert ints["ts"].dtype == np.int64
    assert report.has_time and report.rows_read == report.rows_kept == 3
    assert sorted(data.users["user_id"]) == ["u1", "u2"] and data.users["age"].isna().all()
    assert sorted(data.items["product_id"]) == ["p1", "p2"] and data.items["price"].isna().all()


def test_unix_seconds_and_milliseconds(tmp_path: Path) -> None:
    secs = write(tmp_path / "s.csv", "u,i,t", f"a,x,{T0}", f"b,y,{T0 + 1}.7")
    data, report = csv_interactions.load(secs, "u", "i", None, "t", None)
    assert list(data.interactions["ts"]) == [T0, T0 + 1]
    assert (data.interactions["rating"] == 1.0).all()  # no rating column
    millis = write(tmp_path / "ms.csv", "u,i,t", f"a,x,{T0 * 1000}", f"b,y,{T0 * 1000 + 2500}")
    data, report = csv_interactions.load(millis, "u", "i", None, "t", None)
    assert list(data.interactions["ts"]) == [T0, T0 + 2]
    assert any("milliseconds" in n for n in report.notes)


def test_other_datetime_formats_are_read_with_one_guessed_format(tmp_path: Path) -> None:
    path = write(tmp_path / "us.csv", "u,i,t", "a,x,12/1/2010 8:26", "b,y,12/2/2010 8:26")
    data, report = csv_interactions.load(path, "u", "i", None, "t", None)
    assert data.interactions["ts"].iloc[0] == datetime(2010, 12, 1, 8, 26, tzinfo=UTC).timestamp()
    assert any("'%m/%d/%Y %H:%M'" in n for n in report.notes)
    # A junk first value does not stop the guess; it is reported like any unreadable time.
    path = write(tmp_path / "junk.csv", "u,i,t", "a,x,soon", "b,y,12/2/2010 8:26")
    data, report = csv_interactions.load(path, "u", "i", None, "t", None)
    assert list(data.interactions["user_id"]) == ["b"]
    assert report.malformed == [MalformedRow("junk.csv", 2, "t is not a time: 'soon'")]


def test_without_time_column_ts_is_row_order(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "u,i", "a,x", "b,y", ",z", "c,z")
    data, report = csv_interactions.load(path, "u", "i", None, None, None)
    assert list(data.interactions["ts"]) == [0, 1, 2]
    assert list(data.interactions["user_id"]) == ["a", "b", "c"]
    assert report.has_time is False
    assert any("no time column" in n for n in report.notes)


def test_bad_rows_are_reported_never_coerced(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.csv",
        "user,item,rating,ts",
        f"u1,p1,5,{T0}",
        f",p1,5,{T0}",  # line 3
        f"u2,,5,{T0}",  # line 4
        f"u2,p2,great,{T0}",  # line 5
        "u2,p2,4,",  # line 6
        f"u3,p3,0,{T0}",  # dislike: dropped, not malformed
        f"u3,p3,-1,{T0}",
        f"u3,p3,5,{T0},extra",  # line 9
        f"u4,p4,nan,{T0}",  # line 10
    )
    data, report = csv_interactions.load(path, "user", "item", "rating", "ts", None)
    assert report.malformed == [
        MalformedRow("bad.csv", 3, "missing user"),
        MalformedRow("bad.csv", 4, "missing item"),
        MalformedRow("bad.csv", 5, "rating is not a number: 'great'"),
        MalformedRow("bad.csv", 6, "missing ts"),
        MalformedRow("bad.csv", 9, "expected 4 fields, found 5"),
        MalformedRow("bad.csv", 10, "rating is not a number: 'nan'"),
    ]
    assert report.dropped == {"rating <= 0": 2}
    # One of the three readable rows rates 0: a share where 0 may mean "taken, not rated".
    assert (
        "rating is 0 in 1 of 3 rows: they count as no interaction; where 0 means taken but "
        "not rated, leave the rating column out (--rating-col; csv.rating_col in POST /train) "
        "and every row counts"
    ) in report.notes
    assert report.rows_read == 9 == report.rows_kept + 2 + report.n_malformed
    assert list(data.interactions["user_id"]) == ["u1"]


def test_rows_wider_than_the_header_are_reported_even_first(tmp_path: Path) -> None:
    # pandas alone would cut a wide first row (and every later one as wide) without a word.
    path = write(tmp_path / "w.csv", "u,i", "", "a,x,extra", '"b', 'b",y', "c,z,1,2", "d,w")
    data, report = csv_interactions.load(path, "u", "i", None, None, None)
    assert report.malformed == [
        MalformedRow("w.csv", 3, "expected 2 fields, found 3"),
        MalformedRow("w.csv", 6, "expected 2 fields, found 4"),  # a quoted newline before it
    ]
    assert list(data.interactions["user_id"]) == ["b\nb", "d"]
    assert report.rows_read == 4
    every_row_wide = write(tmp_path / "w2.csv", "u,i", "a,x,1", "b,y,1", "c,z,1", "d,w,1", "e,v")
    with pytest.raises(DatasetError, match="more fields than the 2 column names of the header"):
        csv_interactions.load(every_row_wide, "u", "i", None, None, None)


def test_unparseable_times_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "u,i,t", "a,x,2024-01-01", "b,y,someday", "c,z,2024-02-30")
    data, report = csv_interactions.load(path, "u", "i", None, "t", None)
    assert report.malformed == [
        MalformedRow("t.csv", 3, "t is not a time: 'someday'"),
        MalformedRow("t.csv", 4, "t is not a time: '2024-02-30'"),
    ]
    assert list(data.interactions["user_id"]) == ["a"]


def test_missing_columns_list_the_available_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "user_id,sku,stars", "a,x,1")
    with pytest.raises(DatasetError) as err:
        csv_interactions.load(path, "user_id", "product_id", "rating", None, None)
    assert str(err.value) == (
        "c.csv: missing columns ['product_id', 'rating']; "
        "available columns: ['user_id', 'sku', 'stars']"
    )


@pytest.mark.parametrize(
    ("sep", "name"),
    [
        (";", "semicolons"),
        ("\t", "tabs (no quoting: a quote is part of its field)"),
        ("|", "pipes"),
        ("::", "double colons (no quoting: a quote is part of its field)"),
        (",", None),
    ],
)
def test_the_separator_is_the_one_the_header_line_uses(
    tmp_path: Path, sep: str, name: str | None
) -> None:
    lines = [sep.join(r) for r in (["user", "item", "stars"], ["a", "x", "4"], ["b", "y", "2"])]
    data, report = csv_interactions.load(write(tmp_path / "e.csv", *lines), "user", "item", "stars")
    assert list(data.interactions["user_id"]) == ["a", "b"]
    assert list(data.interactions["rating"]) == [4.0, 2.0]
    notes = [n for n in report.notes if "separated by" in n]
    assert notes == ([f"e.csv: fields separated by {name}"] if name else [])


def test_double_colons_win_a_tie_with_pipes(tmp_path: Path) -> None:
    """MovieLens 1M's movies.dat: line 1 is three fields split on "::" and on "|"."""
    line = "1::Toy Story (1995)::Animation|Children's|Comedy"
    path = write(tmp_path / "movies.dat", line, "2::GoldenEye (1995)::Action")
    assert reading.header_separator(path, "utf-8") == "::"
    assert reading.header_separator(write(tmp_path / "p.csv", "a|b|c::d"), "utf-8") == "|"


def test_a_tab_file_has_no_quoting(tmp_path: Path) -> None:
    """A title opening with a quote (Amazon's review dumps, Last.fm's logs) is text: read as
    quoted, it swallowed every line up to the next quote into one field, silently."""
    path = write(
        tmp_path / "plays.tsv",
        "user\titem\tname\tplays",
        'u1\ta1\t"Heroes\t5',
        "u2\ta2\tBowie\t3",
        'u3\ta3\t"Weird Al" Yankovic\t2',
        "u4\ta4\t4",  # a field short: reported with its line
    )
    data, report = csv_interactions.load(
        path, "user", "item", "plays", None, None, {"title": "name"}
    )
    assert data.interactions["rating"].tolist() == [5.0, 3.0, 2.0]
    titles = data.items.set_index("product_id")["title"]
    assert titles["a1"] == '"Heroes' and titles["a3"] == '"Weird Al" Yankovic'
    assert report.malformed == [MalformedRow("plays.tsv", 5, "missing plays")]


def test_a_tab_file_quoted_whole_reads_as_its_text(tmp_path: Path) -> None:
    """R's write.table (sep="\\t") and pandas' QUOTE_ALL quote every text field."""
    path = write(
        tmp_path / "r.tsv",
        '"user"\t"item"\t"name"\t"stars"',
        '"u1"\t"a1"\t"12"" Single"\t4',
        '"u2"\t"a2"\t""\t3',  # quoted empty: empty
        '"u3"\t"a3"\t"Heroes\t5',  # not closed: the quote is text, the field a title
    )
    data, report = csv_interactions.load(
        path, "user", "item", "stars", None, None, {"title": "name"}
    )
    assert data.interactions["user_id"].tolist() == ["u1", "u2", "u3"]
    titles = data.items.set_index("product_id")["title"]
    assert titles["a1"] == '12" Single' and pd.isna(titles["a2"]) and titles["a3"] == '"Heroes'
    assert report.malformed == []


def test_quoted_line_breaks_are_said(tmp_path: Path) -> None:
    path = write(
        tmp_path / "e.csv",
        "user,item,name,stars",
        'u1,a1,"Heroes,5',  # the quote closes three lines below: u2 and u3 are in its field
        "u2,a2,Bowie,3",
        "u3,a3,Prince,4",
        'u4,a4,"Weird Al" Yankovic,2',
        "u5,a5,Queen,1",
    )
    data, report = csv_interactions.load(path, "user", "item", "stars")
    assert data.interactions["user_id"].tolist() == ["u1", "u5"]
    assert (
        "e.csv: quoted fields span lines (rows: 1, the first from line 2): if a quote there "
        "is unbalanced, the lines after it were read as part of one field"
    ) in report.notes


def test_a_double_colon_file_is_split_line_by_line(tmp_path: Path) -> None:
    """MovieLens 1M's ratings.dat: "::" between fields, no header, no quoting."""
    lines = (
        f"1::1193::5::{T0 + 2}",
        f"1:: 661 ::3::{T0}",  # spaces around a field are dropped, as in any csv
        "2::3::4::5::6",  # a field too many: reported on its own line
        "",
        "3::x",  # too few: its missing fields are reported
        f"2::1193::4::{T0 + 1}",
    )
    path = write(tmp_path / "ratings.dat", *lines)
    zipped = tmp_path / "ratings.dat.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    for source in (path, zipped):
        data, report = csv_interactions.load(source, "1", "2", "3", "4", header=False)
        ints = data.interactions
        assert list(zip(ints["user_id"], ints["product_id"], ints["rating"], strict=True)) == [
            ("1", "661", 3.0),
            ("2", "1193", 4.0),
            ("1", "1193", 5.0),
        ]
        assert report.rows_read == 5 and report.rows_kept == 3
        assert report.malformed == [
            MalformedRow(source.name, 3, "expected 4 fields, found 5"),
            MalformedRow(source.name, 5, "missing 3"),
        ]
        assert (
            f"{source.name}: fields separated by double colons (no quoting: a quote is part of "
            "its field)"
        ) in report.notes
    # With a header line, its names; a position past them is a missing column.
    named = write(tmp_path / "named.dat", "\ufeffuser::item", "u1::p1", "u2::p2::extra")
    data, report = csv_interactions.load(named, "user", "item")
    assert list(data.interactions["user_id"]) == ["u1"]
    assert report.malformed == [MalformedRow("named.dat", 3, "expected 2 fields, found 3")]
    # (its byte-order mark, as spreadsheets write UTF-8, is no part of the first name)


def test_a_comma_inside_a_value_does_not_make_it_the_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", 'user;item;"title, long"', 'a;x;"Mug, blue"', "b;y;Cup")
    data, _ = csv_interactions.load(path, "user", "item", attribute_cols={"title": "title, long"})
    titles = data.items.set_index("product_id")["title"]
    assert titles["x"] == "Mug, blue" and titles["y"] == "Cup"


def test_a_semicolon_file_reads_decimal_commas_in_its_numbers(tmp_path: Path) -> None:
    events = write(tmp_path / "e.csv", "user;item;stars", "a;x;3,5", "b;y;4", "c;y;n/a")
    items = write(tmp_path / "i.csv", "item;price", "x;1,25", "y;2.5")
    data, report = csv_interactions.load(events, "user", "item", "stars", items_path=items)
    assert list(data.interactions["rating"]) == [3.5, 4.0]  # "n/a" stays a reported row
    assert [(r.line, r.reason) for r in report.malformed] == [(4, "stars is not a number: 'n/a'")]
    assert dict(zip(data.items["product_id"], data.items["price"], strict=True)) == {
        "x": 1.25,
        "y": 2.5,
    }
    assert "e.csv: stars read with a decimal comma" in report.notes
    assert "i.csv: price read with a decimal comma" in report.notes
    assert "i.csv: fields separated by semicolons" in report.notes


def test_a_line_1_past_the_csv_modules_field_limit_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "blob.csv", "x" * 200_000, "y")  # the csv module stops at 131,072
    with pytest.raises(DatasetError, match=r"blob\.csv: missing columns \['u', 'i'\]"):
        csv_interactions.load(path, "u", "i")


def test_a_file_without_a_header_line_is_told_to_add_one(tmp_path: Path) -> None:
    path = write(tmp_path / "u.data", "196\t242\t3\t881250949", "186\t302\t3\t891717742")
    with pytest.raises(DatasetError) as err:
        csv_interactions.load(path, "user", "item", None, None, None)
    assert str(err.value) == (
        "u.data: missing columns ['user', 'item']; available columns: "
        "['196', '242', '3', '881250949'] (line 1 holds values, not column names: add a header "
        "line naming them, or read the file without one and name the columns by position, 1 to "
        '4: --no-header, or "header": false in POST /train\'s csv)'
    )


def test_a_file_without_a_header_line_names_its_columns_by_position(tmp_path: Path) -> None:
    path = write(
        tmp_path / "u.data",
        f"196\t242\t3\t{T0 + 20}",
        f"186\t302\t4\t{T0}",
        "1\t2\t3\t4\t5",  # one field too many: a reported row, on its own line
        "",
        f"22\t377\tx\t{T0 + 10}",
        f"22\t302\t5\t{T0 + 30}",
    )
    data, report = csv_interactions.load(path, "1", "2", "3", "4", header=False)
    ints = data.interactions
    assert list(ints["user_id"]) == ["186", "196", "22"]  # line 1 is data; sorted by time
    assert list(ints["product_id"]) == ["302", "242", "302"]
    assert list(ints["rating"]) == [4.0, 3.0, 5.0]
    assert list(ints["ts"]) == [T0, T0 + 20, T0 + 30]
    assert "fields separated by tabs" in " ".join(report.notes)
    assert report.rows_read == 5 and report.rows_kept == 3
    assert report.malformed == [
        MalformedRow("u.data", 3, "expected 4 fields, found 5"),
        MalformedRow("u.data", 5, "3 is not a number: 'x'"),
    ]
    # An item table whose line 1 names no item of the events keeps it as its header line, and
    # is joined on its first column.
    items = write(tmp_path / "items.csv", "movie_id,title", "242,Kolya", "302,L.A. Confidential")
    data, report = csv_interactions.load(path, "1", "2", "3", "4", items, header=False)
    titles = data.items.set_index("product_id")["title"]
    assert titles.to_dict() == {"302": "L.A. Confidential", "242": "Kolya"}
    assert "items.csv joined on its first column, movie_id" in report.notes
    # Its attributes are its own columns, as the options' check takes them: a position it
    # does not name is refused, not read from the events' column 2 (their item ids as titles).
    with pytest.raises(DatasetError) as err:
        csv_interactions.load(path, "1", "2", "3", "4", items, {"title": "2"}, header=False)
    assert str(err.value) == (
        "items.csv: missing columns ['2']; available columns: ['movie_id', 'title']"
    )
    # Names that are not positions: the columns there are are listed, with no header hint.
    with pytest.raises(DatasetError) as err:
        csv_interactions.load(path, "user", "2", header=False)
    assert str(err.value) == (
        "u.data: missing columns ['user']; available columns: ['1', '2', '3', '4']"
    )


def test_an_item_table_without_a_header_line_names_its_columns_by_position(
    tmp_path: Path,
) -> None:
    # MovieLens 1M's ratings.dat and movies.dat: no header line in either, latin-1 titles.
    path = write(tmp_path / "ratings.dat", f"1::1193::5::{T0}", f"2::661::3::{T0 + 1}")
    movies = tmp_path / "movies.dat"
    movies.write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1")
    )
    attrs = {"title": "2", "category": "3"}
    data, report = csv_interactions.load(path, "1", "2", "3", "4", movies, attrs, header=False)
    items = data.items.set_index("product_id")
    # "2" is the item table's title, not the events' item column
    assert items["title"].to_dict() == {
        "1193": "One Flew Over the Cuckoo's Nest (1975)",
        "661": "Misérables, Les (1995)",
    }
    assert items["category"].to_dict() == {"1193": "Drama", "661": "Drama|Musical"}
    note = "movies.dat joined on its first column, 1 (no header line: columns named by position)"
    assert note in report.notes
    assert "movies.dat is not UTF-8: read as latin-1" in report.notes
    # Without names for its columns the table gives nothing, and says how to name them.
    data, report = csv_interactions.load(path, "1", "2", "3", "4", movies, header=False)
    assert data.items["title"].isna().all()
    assert (
        "movies.dat has no header line: name its columns by position, e.g. --title-col 2"
        in report.notes
    )
    # Line 1 is data too where its movie is rated by no one: its id is a number.
    movies.write_text("5::Unrated (1995)::Comedy\n661::Les Misérables (1995)::Drama\n")
    data, _ = csv_interactions.load(path, "1", "2", "3", "4", movies, attrs, header=False)
    assert data.items.set_index("product_id")["title"]["661"] == "Les Misérables (1995)"
    # A segment is still the events' own column.
    data, _ = csv_interactions.load(
        path, "1", "2", None, "4", movies, {"segment": "3"}, header=False
    )
    assert data.users.set_index("user_id")["segment"].to_dict() == {"1": "5", "2": "3"}


def test_unusable_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.csv: no such file"):
        csv_interactions.load(tmp_path / "nope.csv", "u", "i", None, None, None)
    with pytest.raises(DatasetError, match=r"empty\.csv: the file is empty"):
        csv_interactions.load(write(tmp_path / "empty.csv", ""), "u", "i", None, None, None)
    with pytest.raises(DatasetError, match=r"head\.csv: no usable interactions"):
        csv_interactions.load(write(tmp_path / "head.csv", "u,i"), "u", "i", None, None, None)
    with pytest.raises(DatasetError, match="save the sheet as CSV"):
        csv_interactions.load(tmp_path / "sheet.xlsx", "u", "i", None, None, None)
    (tmp_path / "zip.csv").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(DatasetError, match="zip/xlsx file, expected CSV"):
        csv_interactions.load(tmp_path / "zip.csv", "u", "i", None, None, None)
    (tmp_path / "quote.csv").write_text('u,i\na,"x\n')
    with pytest.raises(DatasetError, match=r"quote\.csv: cannot be parsed as CSV"):
        csv_interactions.load(tmp_path / "quote.csv", "u", "i", None, None, None)


def test_gzip_and_latin1(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "e.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("u,i\na,x\nb,y\n")
    data, _ = csv_interactions.load(tmp_path / "e.csv.gz", "u", "i", None, None, None)
    assert len(data.interactions) == 2
    path = write(tmp_path / "l.csv", "u,i", "josé,x", encoding="latin-1")
    data, report = csv_interactions.load(path, "u", "i", None, None, None)
    assert data.interactions["user_id"].iloc[0] == "josé"
    assert "l.csv is not UTF-8: read as latin-1" in report.notes


def test_item_table_is_joined_case_insensitively(tmp_path: Path) -> None:
    events = write(tmp_path / "e.csv", "u,sku", "a,x", "a,y", "b,z", "b,w")
    items = write(
        tmp_path / "items.csv",
        "sku,Title,CATEGORY,Price,colour",
        "x,Lamp,home,12.5,red",
        "y,Book,,abc,blue",  # line 3: bad price, whole row skipped
        "z,Mug,home,,white",  # no price: fine, NaN
        "x,Lamp again,home,1,red",  # line 5: duplicate
        "v,Unused,toys,3,green",
    )
    data, report = csv_interactions.load(events, "u", "sku", None, None, items)
    item = data.items.set_index("product_id")
    assert sorted(item.index) == ["w", "x", "y", "z"]  # the interacted items only
    assert list(item.loc["x"])[:3] == ["Lamp", "home", 12.5] and item["tags"].isna().all()
    assert item.loc["z", "category"] == "home" and item["price"].isna()["z"]
    assert item.loc["y"].isna().all() and item.loc["w"].isna().all()
    assert item["price"].dtype == np.float64
    assert report.malformed == [
        MalformedRow("items.csv", 3, "price is not a number: 'abc'"),
        MalformedRow("items.csv", 5, "sku seen before: 'x'"),
    ]
    assert "2 items have no usable row in items.csv" in report.notes
    with pytest.raises(DatasetError, match=r"items.csv: missing columns \['item'\]"):
        csv_interactions.load(
            write(tmp_path / "e2.csv", "u,item", "a,x"), "u", "item", None, None, items
        )


def test_real_retail_file_through_the_generic_loader() -> None:
    if not RETAIL.parent.is_dir():
        pytest.skip(f"team data folder {RETAIL.parent} absent (set RECSYS_DATA_DIR)")
    data, report = csv_interactions.load(
        RETAIL, "CustomerID", "StockCode", None, "InvoiceDate", None
    )
    # Guest lines have no CustomerID: reported as missing user, everything else kept.
    assert report.malformed_counts == {"online_retail.csv.gz: missing CustomerID": 135_080}
    assert report.rows_read == 541_909 and report.rows_kept == 541_909 - 135_080
    assert report.malformed[0] == MalformedRow("online_retail.csv.gz", 624, "missing CustomerID")
    assert data.interactions["ts"].min() == datetime(2010, 12, 1, 8, 26, tzinfo=UTC).timestamp()
    assert data.interactions["user_id"].nunique() == 4_372


def test_item_table_tags_are_kept_as_written(tmp_path: Path) -> None:
    events = write(tmp_path / "e.csv", "u,sku", "a,x", "a,y", "b,z")
    items = write(tmp_path / "items.csv", "sku,title,Tags", "x,Lamp,home|light", "y,Mug,")
    data, report = csv_interactions.load(events, "u", "sku", None, None, items)
    tags = data.items.set_index("product_id")["tags"]
    assert tags["x"] == "home|light"  # split into labels where the graph uses them
    assert tags.isna()["y"] and tags.isna()["z"]
    assert report.malformed == []


def test_attributes_from_the_events_are_each_items_and_users_latest(tmp_path: Path) -> None:
    events = write(
        tmp_path / "e.csv",
        "u,sku,t,unit_price,dept,country",
        "a,x,3,2.5,home,UK",
        "a,x,1,9,garden,FR",  # earlier in time although later in the file
        "b,x,2,,,",  # empty cells leave the latest non-empty value
        "b,y,4,n/a,toys,DE",  # not a number: no price for y, the row is kept
    )
    cols = {"price": "unit_price", "category": "dept", "segment": "country"}
    data, report = csv_interactions.load(events, "u", "sku", None, "t", None, cols)
    item = data.items.set_index("product_id")
    assert item.loc["x", "price"] == 2.5 and item.loc["x", "category"] == "home"
    assert item["price"].isna()["y"] and item.loc["y", "category"] == "toys"
    assert item["title"].isna().all()
    assert data.users.set_index("user_id")["segment"].to_dict() == {"a": "UK", "b": "DE"}
    assert report.rows_kept == 4 and report.malformed == []
    assert "1 rows have a unit_price that is not a number: not used as a price" in report.notes


def test_attribute_columns_may_name_item_table_columns(tmp_path: Path) -> None:
    events = write(tmp_path / "e.csv", "u,sku,price", "a,x,3", "a,y,4")
    items = write(tmp_path / "items.csv", "sku,description,price", "x,Lamp,100", "y,Mug,")
    cols = {"title": "description", "price": "price"}
    data, _ = csv_interactions.load(events, "u", "sku", None, None, items, cols)
    item = data.items.set_index("product_id")
    assert item["title"].to_dict() == {"x": "Lamp", "y": "Mug"}
    assert item["price"].to_dict() == {"x": 3.0, "y": 4.0}  # the events' own column comes first
    with pytest.raises(DatasetError, match=r"e.csv: missing columns \['country'\]"):
        csv_interactions.load(events, "u", "sku", None, None, items, {"segment": "country"})
    with pytest.raises(DatasetError, match=r"items.csv: missing columns \['dept'\]"):
        csv_interactions.load(events, "u", "sku", None, None, items, {"category": "dept"})
    with pytest.raises(DatasetError, match=r"e.csv: missing columns \['dept'\]"):
        csv_interactions.load(events, "u", "sku", None, None, None, {"category": "dept"})


def test_event_types_spelled_otherwise_are_matched_and_said(tmp_path: Path) -> None:
    events = write(
        tmp_path / "e.csv",
        "u,sku,event",
        "a,x,addtocart",  # the live events' add_to_cart
        "a,y,Purchase",
        "b,x,add-to-cart",
        "b,y,View",
        "b,z,Like",  # line 6: "like" and "LIKE" are both weighed, so either would be a guess
    )
    weights = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0, "like": 2.0, "LIKE": 4.0}
    data, report = csv_interactions.load(
        events, "u", "sku", None, None, None, None, "event", weights
    )
    ints = data.interactions.set_index(["user_id", "product_id"])["rating"]
    assert ints.to_dict() == {("a", "x"): 3.0, ("a", "y"): 5.0, ("b", "x"): 3.0, ("b", "y"): 1.0}
    assert report.malformed == [
        MalformedRow(
            "e.csv",
            6,
            "event has no weight (weighed: LIKE, add_to_cart, like, purchase, view): 'Like'",
        )
    ]
    assert {n for n in report.notes if n.startswith("event type '")} == {
        "event type 'addtocart' weighed as 'add_to_cart'",
        "event type 'Purchase' weighed as 'purchase'",
        "event type 'add-to-cart' weighed as 'add_to_cart'",
        "event type 'View' weighed as 'view'",
    }
    assert report.rows_kept == 4
    assert (
        "event types without a weight: 'Like' (rows: 1); weigh them with --event-weights "
        "TYPE=WEIGHT,... (csv.event_weights in POST /train)"
    ) in report.notes


def test_event_types_weigh_each_row(tmp_path: Path) -> None:
    events = write(
        tmp_path / "e.csv",
        "u,sku,event,qty",
        "a,x,view,1",
        "a,y,transaction,2",  # weight times the rating column
        "b,x,dislike,1",  # weighs 0: no interaction
        "b,y,wishlist,1",  # line 5: a type without a weight is a reported row
        "b,z,,1",  # line 6: no type
    )
    weights = {"view": 1.0, "transaction": 5.0, "dislike": 0.0}
    data, report = csv_interactions.load(
        events, "u", "sku", "qty", None, None, None, "event", weights
    )
    ints = data.interactions.set_index(["user_id", "product_id"])["rating"]
    assert ints.to_dict() == {("a", "x"): 1.0, ("a", "y"): 10.0}
    assert report.dropped == {"qty x event's weight <= 0": 1}
    assert report.malformed == [
        MalformedRow(
            "e.csv", 5, "event has no weight (weighed: dislike, transaction, view): 'wishlist'"
        ),
        MalformedRow("e.csv", 6, "missing event"),
    ]
    assert report.rows_read == 5 and report.rows_kept == 2
    with pytest.raises(DatasetError, match=r"missing columns \['type'\]"):
        csv_interactions.load(events, "u", "sku", None, None, None, None, "type", weights)
