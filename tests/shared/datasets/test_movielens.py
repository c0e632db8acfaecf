from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.datasets import movielens
from shared.datasets.base import INTERACTION_COLUMNS, ITEM_COLUMNS, Dataset
from shared.datasets.report import DatasetError, LoadReport, MalformedRow
from tests.conftest import DATA_DIR

REAL = DATA_DIR / "movielens-100k"
GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime"]


@pytest.fixture(scope="module")
def real() -> tuple[Dataset, LoadReport]:
    if not REAL.is_dir():
        pytest.skip(f"team data folder {REAL} absent (set RECSYS_DATA_DIR)")
    return movielens.load(REAL)


def flags(*on: int) -> str:
    return "|".join("1" if g in on else "0" for g in range(len(GENRES)))


def small_folder(
    tmp_path: Path,
    data: list[str] | None = None,
    users: list[str] | None = None,
    items: list[str] | None = None,
) -> Path:
    """A MovieLens-shaped folder with 7 genres; u.item in latin-1 like the official one."""
    folder = tmp_path / "ml"
    folder.mkdir(exist_ok=True)
    genre_lines = [f"{g}|{i}" for i, g in enumerate(GENRES)]
    (folder / "u.genre").write_text("\n".join(genre_lines) + "\n\n", encoding="ascii")
    data = data or ["1\t10\t4\t881250949", "2\t20\t5\t881250950", "1\t20\t3\t881250951"]
    users = users or ["1|24|M|technician|85711", "2|53|F|other|94043"]
    items = items or [
        f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags(3, 4, 5)}",
        f"20|Metisse (Café au Lait) (1993)|01-Jan-1993||http://y|{flags(5)}",
    ]
    (folder / "u.data").write_text("\n".join(data) + "\n", encoding="ascii")
    (folder / "u.user").write_text("\n".join(users) + "\n", encoding="ascii")
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    return folder


def test_real_counts(real: tuple[Dataset, LoadReport]) -> None:
    data, report = real
    assert len(data.interactions) == 100_000
    assert data.interactions["user_id"].nunique() == len(data.users) == 943
    assert data.interactions["product_id"].nunique() == len(data.items) == 1_682
    assert report.rows_read == report.rows_kept == 100_000
    assert report.n_malformed == 0 and report.dropped == {}


def test_real_tables(real: tuple[Dataset, LoadReport]) -> None:
    data, _ = real
    ints, items, users = data.interactions, data.items, data.users
    assert list(ints.columns) == INTERACTION_COLUMNS
    assert list(items.columns) == [*ITEM_COLUMNS, "tags"]
    assert ints["ts"].dtype == np.int64 and ints["ts"].is_monotonic_increasing
    assert set(ints["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert users["age"].between(7, 73).all() and users["age"].min() == 7
    user = users.set_index("user_id")
    assert user.loc["1", "age"] == 24 and user.loc["1", "segment"] == "technician"
    assert user.loc["2", "gender"] == "F"
    assert users["segment"].nunique() == 21  # the occupations of u.occupation
    item = items.set_index("product_id")
    assert item.loc["1", "title"] == "Toy Story (1995)"
    assert item.loc["1", "category"] == "Animation"  # first of Animation, Children's, Comedy
    assert item.loc["1", "tags"] == "Animation|Children's|Comedy"
    assert item.loc["3", "tags"] == "Thriller"
    # latin-1 titles decode to the right characters, not mojibake.
    assert item.loc["1322", "title"] == "Metisse (Café au Lait) (1993)"
    assert item.loc["543", "title"] == "Misérables, Les (1995)"
    assert items["price"].isna().all()
    assert not items["title"].str.contains("Ã").any()


def test_small_folder_loads(tmp_path: Path) -> None:
    data, report = movielens.load(small_folder(tmp_path))
    item = data.items.set_index("product_id")
    assert item.loc["10", "category"] == "Animation"
    assert item.loc["10", "tags"] == "Animation|Children's|Comedy"
    assert item.loc["20", "title"] == "Metisse (Café au Lait) (1993)"
    assert list(data.interactions["ts"]) == [881250949, 881250950, 881250951]
    assert report.notes == ["u.item read as latin-1"]


def test_utf8_item_file_is_read_as_utf8(tmp_path: Path) -> None:
    folder = small_folder(tmp_path)
    text = (folder / "u.item").read_bytes().decode("latin-1")
    (folder / "u.item").write_text(text, encoding="utf-8")
    data, report = movielens.load(folder)
    assert data.items.set_index("product_id").loc["20", "title"] == "Metisse (Café au Lait) (1993)"
    assert report.notes == []


def test_malformed_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    folder = small_folder(
        tmp_path,
        data=[
            "1\t10\t4\t881250949",
            "2,20,5,881250950",  # line 2: wrong separator
            "",  # line 3: blank, skipped quietly
            "1\t20\t6\t881250951",  # line 4: rating out of range
            "x\t20\t3\t881250952",  # line 5
            "2\t30\t3\t881250953",  # movie 30's u.item line is broken
            "2\t10\t3\tyesterday",  # line 7
            "3\t10\t2\t881250954",  # user 3's u.user line is broken
        ],
        users=["1|24|M|technician|85711", "2|53|F|other|94043", "3|old|M|writer|32067"],
        items=[
            f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags(3)}",
            f"20|Heat (1995)|01-Jan-1995||http://y|{flags(1)}",
            f"30|Broken (1995)|01-Jan-1995||http://z|{flags(1).replace('1', '2')}",
            "40|Too Short (1995)",
        ],
    )
    data, report = movielens.load(folder)
    assert report.malformed == [
        MalformedRow("u.data", 2, "expected 4 tab-separated fields, found 1"),
        MalformedRow("u.data", 4, "rating is not a number from 1 to 5: '6'"),
        MalformedRow("u.data", 5, "user id is not a number: 'x'"),
        MalformedRow("u.data", 7, "timestamp is not whole unix seconds: 'yesterday'"),
        MalformedRow("u.user", 3, "age is not a whole number: 'old'"),
        MalformedRow("u.item", 3, "genre flags are not all 0 or 1"),
        MalformedRow("u.item", 4, "expected 12 |-separated fields, found 2"),
    ]
    assert report.rows_read == 7 and report.rows_kept == 3
    assert report.malformed_counts["u.data: rating is not a number from 1 to 5"] == 1
    assert list(data.interactions["user_id"]) == ["1", "2", "3"]
    # Rated ids whose own line was unusable still get a row, with unknown attributes.
    user = data.users.set_index("user_id")
    assert user["age"].isna()["3"]
    assert data.items.set_index("product_id").loc["30"].isna().all()
    assert "1 users rated but have no usable line in u.user" in report.notes


def test_unusable_folders_raise_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="expected the MovieLens 100K folder"):
        movielens.load(tmp_path / "nowhere")
    folder = small_folder(tmp_path)
    (folder / "u.item").unlink()
    with pytest.raises(DatasetError, match=r"ml: u\.item is missing"):
        movielens.load(folder)

    folder = small_folder(tmp_path)
    (folder / "u.data").write_text("")
    with pytest.raises(DatasetError, match=r"u\.data: the file is empty"):
        movielens.load(folder)

    folder = small_folder(tmp_path, data=["1,10,4,881250949", "2,20,5,881250950"])
    with pytest.raises(DatasetError, match=r"no usable ratings in u\.data") as err:
        movielens.load(folder)
    assert "u.data line 1: expected 4 tab-separated fields, found 1" in str(err.value)

    folder = small_folder(tmp_path)
    (folder / "u.genre").write_text("Action|1\nDrama|5\n")
    with pytest.raises(DatasetError, match=r"u\.genre: expected lines"):
        movielens.load(folder)
