"""MovieLens 100K (GroupLens, 1998): 100,000 ratings 1-5 by 943 users on 1,682 movies.

Reads the folder as downloaded: u.data (ratings), u.user (age, gender, occupation), u.item
(title and genre flags, latin-1) and u.genre (the flags' names).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shared.datasets.base import ITEM_COLUMNS, TAG_SEPARATOR, Dataset
from shared.datasets.report import DatasetError, LoadReport, RowChecks
from shared.datasets.text_table import TextTable, text_column
from shared.datasets.unquoted import split_lines

NAME = "movielens-100k"
# The official u.item is latin-1; some mirrors re-encode it as UTF-8, which then decodes first.
ITEM_ENCODINGS = ("utf-8", "latin-1")
ITEM_FIXED_FIELDS = 5  # id, title, release date, video release date, IMDb URL; genre flags follow


def load(folder: Path) -> tuple[Dataset, LoadReport]:
    if not folder.is_dir():
        raise DatasetError(f"{folder.name}: expected the MovieLens 100K folder (u.data, u.item...)")
    report = LoadReport(source=folder.name)
    ratings = _ratings(folder / "u.data", report)
    users = _users(folder / "u.user", report)
    genres = _genres(folder / "u.genre")
    items = _items(folder / "u.item", genres, report)
    if ratings.empty:
        raise DatasetError(f"{folder.name}: no usable ratings in u.data\n{report.summary()}")

    # Every id in the ratings gets a row, with unknown attributes if its own line was unusable.
    user_ids = pd.Series(pd.unique(ratings["user_id"]), dtype="str")
    missing_users = user_ids[~user_ids.isin(users["user_id"])]
    if len(missing_users):
        report.notes.append(f"{len(missing_users)} users rated but have no usable line in u.user")
        users = pd.concat([users, pd.DataFrame({"user_id": missing_users})], ignore_index=True)
    item_ids = pd.Series(pd.unique(ratings["product_id"]), dtype="str")
    missing_items = item_ids[~item_ids.isin(items["product_id"])]
    if len(missing_items):
        report.notes.append(f"{len(missing_items)} rated movies have no usable line in u.item")
        items = pd.concat([items, pd.DataFrame({"product_id": missing_items})], ignore_index=True)
    users = users.astype({"user_id": "str", "age": np.float64})
    items = items.astype({"product_id": "str"})
    for frame, columns in ((users, ("segment", "gender")), (items, ("title", "category", "tags"))):
        for col in columns:
            frame[col] = text_column(frame[col])
    items["price"] = np.nan  # MovieLens has no prices
    items = items[[*ITEM_COLUMNS, "tags"]]
    return Dataset(name=NAME, interactions=ratings, items=items, users=users), report


def _read(path: Path, sep: str, width: int, encodings: tuple[str, ...] = ("utf-8",)) -> TextTable:
    """`width`: the fields a good line has (a wider one is blank, reported from its count)."""
    if not path.exists():
        raise DatasetError(f"{path.parent.name}: {path.name} is missing")
    return split_lines(path, sep, encodings, width)


def _is_id(text: pd.Series) -> pd.Series:
    return text.str.fullmatch(r"\d+")


def _field_count(checks: RowChecks, table: TextTable, what: str) -> None:
    """Lines whose field count is not the width `_read` was given (the frame's)."""
    assert table.field_counts is not None
    expected = table.frame.shape[1]
    checks.flag(
        table.field_counts != expected,
        f"expected {expected} {what}-separated fields",
        "found " + table.field_counts.astype("str"),
        quote=False,
    )


def _ratings(path: Path, report: LoadReport) -> pd.DataFrame:
    table = _read(path, "\t", 4)
    assert table.field_counts is not None
    blank = (table.field_counts == 0).to_numpy()
    report.rows_read = int((~blank).sum())
    f = table.frame
    rating = pd.to_numeric(f[2], errors="coerce")
    stamp = pd.to_numeric(f[3].where(f[3].str.fullmatch(r"-?\d+"), ""), errors="coerce")
    checks = RowChecks(len(f), skip=blank)
    _field_count(checks, table, "tab")
    checks.flag(~_is_id(f[0]), "user id is not a number", f[0])
    checks.flag(~_is_id(f[1]), "movie id is not a number", f[1])
    checks.flag(~rating.between(1, 5), "rating is not a number from 1 to 5", f[2])
    checks.flag(stamp.isna(), "timestamp is not whole unix seconds", f[3])
    table.report(report, checks)
    ok = checks.ok
    report.rows_kept = int(ok.sum())
    ratings = pd.DataFrame(
        {
            "user_id": f[0][ok].astype("str"),
            "product_id": f[1][ok].astype("str"),
            "rating": rating[ok].astype(np.float64),
            "ts": stamp[ok].astype(np.int64),
        }
    )
    return ratings.sort_values(["ts", "user_id"], kind="stable", ignore_index=True)


def _users(path: Path, report: LoadReport) -> pd.DataFrame:
    table = _read(path, "|", 5)
    assert table.field_counts is not None
    f = table.frame
    age = pd.to_numeric(f[1].where(f[1].str.fullmatch(r"\d+"), ""), errors="coerce")
    checks = RowChecks(len(f), skip=(table.field_counts == 0).to_numpy())
    _field_count(checks, table, "|")
    checks.flag(~_is_id(f[0]), "user id is not a number", f[0])
    checks.flag(age.isna(), "age is not a whole number", f[1])
    checks.flag(f[0].duplicated(), "user id seen before (first line kept)", f[0])
    table.report(report, checks)
    ok = checks.ok
    return pd.DataFrame(
        {
            "user_id": f[0][ok],
            "age": age[ok].astype(np.float64),
            # Occupation is the closest thing to a customer segment MovieLens has.
            "segment": f[3][ok].where(f[3][ok] != ""),
            "gender": f[2][ok].where(f[2][ok] != ""),
        }
    ).reset_index(drop=True)


def _genres(path: Path) -> list[str]:
    table = _read(path, "|", 2)
    f = table.frame
    assert table.field_counts is not None
    f = f[table.field_counts.to_numpy() > 0]
    index = pd.to_numeric(f[1], errors="coerce")
    if index.isna().any() or sorted(index.astype(int)) != list(range(len(f))) or f[0].eq("").any():
        raise DatasetError(
            f"{path.name}: expected lines 'genre name|index' with indexes 0, 1, 2..."
        )
    return list(f[0].to_numpy()[np.argsort(index.to_numpy())])


def _items(path: Path, genres: list[str], report: LoadReport) -> pd.DataFrame:
    n_fields = ITEM_FIXED_FIELDS + len(genres)
    table = _read(path, "|", n_fields, ITEM_ENCODINGS)
    if table.encoding != "utf-8":
        report.notes.append(f"{path.name} read as {table.encoding}")
    assert table.field_counts is not None
    f = table.frame
    flags = f[list(range(ITEM_FIXED_FIELDS, n_fields))]
    checks = RowChecks(len(f), skip=(table.field_counts == 0).to_numpy())
    _field_count(checks, table, "|")
    checks.flag(~_is_id(f[0]), "movie id is not a number", f[0])
    checks.flag(~flags.isin(["0", "1"]).all(axis=1), "genre flags are not all 0 or 1")
    checks.flag(f[0].duplicated(), "movie id seen before (first line kept)", f[0])
    table.report(report, checks)
    ok = checks.ok
    # u.genre's order is the flags' order; a movie's category is its first flagged genre, its
    # tags all of them (833 of 1,682 movies have one genre, the rest up to six).
    hot = flags[ok].to_numpy() == "1"
    first = np.where(hot.any(axis=1), hot.argmax(axis=1), -1)
    names = np.array([*genres, None], dtype=object)  # -1 picks None: no genre flagged
    tags = [
        TAG_SEPARATOR.join(g for g, on in zip(genres, row, strict=True) if on) or None
        for row in hot
    ]
    title = f[1][ok]
    return pd.DataFrame(
        {
            "product_id": f[0][ok],
            "title": title.where(title != ""),
            "category": names[first],
            "tags": tags,
        }
    ).reset_index(drop=True)
