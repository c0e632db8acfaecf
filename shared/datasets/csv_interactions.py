"""Any interactions CSV (or .csv.gz): one row per user-item event, columns named by the caller.

Titles, categories and prices come from columns of the events themselves (each item's latest
value: a log often carries them on every line) or from an optional item table; a user's segment
(country, plan, age band) from a column of the events. Rows that cannot be read are reported
with file, line and reason and skipped; nothing is guessed silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from shared.datasets.base import Dataset
from shared.datasets.reading import SEPARATORS, UNQUOTED_SEPARATORS, read_csv_text
from shared.datasets.report import DatasetError, LoadReport, RowChecks
from shared.datasets.size import require_readable
from shared.datasets.text_table import TextTable, text_column
from shared.datasets.times import parse_times

NAME = "csv"
ENCODINGS = ("utf-8", "latin-1")
ITEM_ATTRIBUTES = ("title", "category", "tags", "price")
_DECIMAL_COMMA = r"[-+]?\d*,\d+"


def load(
    path: Path,
    user_col: str,
    item_col: str,
    rating_col: str | None = None,
    time_col: str | None = None,
    items_path: Path | None = None,
    attribute_cols: Mapping[str, str] | None = None,
    event_col: str | None = None,
    event_weights: Mapping[str, float] | None = None,
    header: bool = True,
) -> tuple[Dataset, LoadReport]:
    """`attribute_cols` names columns for "title", "category", "price" (item attributes: a
    column of the events file, else of the item table) and "segment" (of the events file).
    `event_col` holds each row's event type, weighed by `event_weights` (type -> strength).
    `header=False`: line 1 is data, and the events' columns are named "1", "2", ... by position
    (an item table's too where its line 1 is data), and title/category/price are then the item
    table's columns."""
    table = _read(path, header)
    _require(table, [c for c in (user_col, item_col, rating_col, time_col, event_col) if c])
    named = dict(attribute_cols or {})
    # a segment is the events' own; without an item table, every attribute is
    _require(table, [c for a, c in named.items() if a == "segment" or items_path is None])
    f = table.frame
    report = LoadReport(source=path.name)
    item_table = None if items_path is None else _item_table(items_path, header, f[item_col])
    # Without a header line in the events, an item table's attributes are its own columns (the
    # options' check decides the same): the events' positions would take "2" for their item
    # column.
    in_table = item_table is not None and not header
    in_events = {
        a: c for a, c in named.items() if c in f.columns and (a == "segment" or not in_table)
    }
    _note_how_read(table, report)
    _note_line_breaks(table, report)
    _decimal_commas(table, [rating_col, named.get("price")], report)
    blank = (f == "").all(axis=1).to_numpy()
    report.rows_read = int((~blank).sum()) + len(table.bad_records)

    checks = RowChecks(len(f), skip=blank)
    checks.flag(f[user_col] == "", f"missing {user_col}")
    checks.flag(f[item_col] == "", f"missing {item_col}")
    if rating_col is None:
        rating = pd.Series(1.0, index=f.index)
    else:
        rating = pd.to_numeric(f[rating_col], errors="coerce")
        checks.flag(f[rating_col] == "", f"missing {rating_col}")
        checks.flag(~np.isfinite(rating), f"{rating_col} is not a number", f[rating_col])
    stars = rating
    if event_col is not None:
        weights = dict(event_weights or {})
        weight = _event_weights(f[event_col], weights, report)
        checks.flag(f[event_col] == "", f"missing {event_col}")
        known = ", ".join(sorted(weights)[:10])
        checks.flag(weight.isna(), f"{event_col} has no weight (weighed: {known})", f[event_col])
        rating = rating * weight
    if time_col is None:
        ts = pd.Series(np.zeros(len(f), dtype=np.int64), index=f.index)
    else:
        ts = parse_times(f[time_col], time_col, report)
        checks.flag(f[time_col] == "", f"missing {time_col}")
        checks.flag(ts.isna(), f"{time_col} is not a time", f[time_col])
    table.report(report, checks)

    keep = checks.ok
    # Zero or negative ratings (dislikes, "seen but skipped") are no positive signal.
    nonpositive = keep & (rating <= 0).to_numpy()
    strength = [rating_col] if rating_col else []
    if event_col:
        strength.append(f"{event_col}'s weight")
    report.drop(f"{' x '.join(strength)} <= 0", int(nonpositive.sum()))
    _note_zero_ratings(stars, keep, rating_col, report)
    keep &= ~nonpositive
    report.rows_kept = int(keep.sum())
    if not keep.any():
        raise DatasetError(f"{path.name}: no usable interactions\n{report.summary()}")

    interactions = pd.DataFrame(
        {
            "user_id": f[user_col][keep].astype("str"),
            "product_id": f[item_col][keep].astype("str"),
            "rating": rating[keep].astype(np.float64),
            "ts": ts[keep].astype(np.int64),
        }
    ).reset_index(drop=True)
    if time_col is None:
        # File order stands in for time: later rows count as later events.
        interactions["ts"] = np.arange(len(interactions), dtype=np.int64)
        report.has_time = False
        report.notes.append("no time column: ts is the row order, so splits cannot use time")
    else:
        interactions = interactions.sort_values(["ts", "user_id"], kind="stable", ignore_index=True)

    product_ids = pd.Series(pd.unique(interactions["product_id"]), dtype="str")
    from_table = {a: c for a, c in named.items() if a not in in_events}
    # Joined on the events' item column by name, or on its own first column when the events
    # have no names.
    items = _items(product_ids, item_table, item_col if header else None, report, from_table)
    latest = _latest(f[keep], in_events, user_col, item_col, ts[keep], report)
    for attr in ("title", "category", "price"):
        if attr in latest:
            values = latest[attr].reindex(items["product_id"]).to_numpy()
            merged = np.where(pd.isna(values), items[attr].to_numpy(dtype=object), values)
            items[attr] = merged.astype(np.float64) if attr == "price" else text_column(merged)
    user_ids = pd.Series(pd.unique(interactions["user_id"]), dtype="str")
    segment = pd.Series([None] * len(user_ids), dtype="str")
    if "segment" in latest:
        segment = text_column(pd.Series(latest["segment"].reindex(user_ids).to_numpy()))
    users = pd.DataFrame(
        {"user_id": user_ids, "age": np.full(len(user_ids), np.nan), "segment": segment}
    )
    return Dataset(name=NAME, interactions=interactions, items=items, users=users), report


def _latest(
    rows: pd.DataFrame,
    columns: Mapping[str, str],
    user_col: str,
    item_col: str,
    ts: pd.Series,
    report: LoadReport,
) -> dict[str, pd.Series]:
    """Per attribute of `columns` (attribute -> column of the events): each item's latest
    non-empty value, each user's for "segment"; by time (file order where times tie)."""
    rows = rows.iloc[np.argsort(ts.to_numpy(dtype=np.float64), kind="stable")]
    out: dict[str, pd.Series] = {}
    for attr, column in columns.items():
        values: pd.Series = rows[column]
        if attr == "price":
            numbers = pd.to_numeric(values, errors="coerce")
            unreadable = int(((values != "") & ~np.isfinite(numbers)).sum())
            if unreadable:
                report.notes.append(
                    f"{unreadable} rows have a {column} that is not a number: not used as a price"
                )
            values = numbers.where(np.isfinite(numbers))
        else:
            values = values.where(values != "")
        present = values.notna().to_numpy()
        owner = rows[user_col if attr == "segment" else item_col][present].astype(str)
        out[attr] = values[present].groupby(owner).last()
    return out


def _read(path: Path, header: bool) -> TextTable:
    if path.suffix.lower() in (".xlsx", ".xls"):
        raise DatasetError(f"{path.name}: expected a CSV file; save the sheet as CSV")
    require_readable(path)
    return read_csv_text(path, sep=None, encodings=ENCODINGS, header=header)


def _note_how_read(table: TextTable, report: LoadReport) -> None:
    """The separator, where it is not the comma people assume, and the encoding, where not
    UTF-8."""
    if table.encoding != "utf-8":
        report.notes.append(f"{table.name} is not UTF-8: read as {table.encoding}")
    if table.sep != "," and table.sep in SEPARATORS:
        unquoted = " (no quoting: a quote is part of its field)"
        how = unquoted if table.sep in UNQUOTED_SEPARATORS else ""
        report.notes.append(f"{table.name}: fields separated by {SEPARATORS[table.sep][0]}{how}")


def _note_line_breaks(table: TextTable, report: LoadReport) -> None:
    """Say where quoted fields span lines: a stray quote merges every line up to the next
    quote into one field, and the rows read may look whole."""
    if table.sep in UNQUOTED_SEPARATORS or table.frame.empty:
        return
    spans = np.zeros(len(table.frame), dtype=bool)
    for col in table.frame.columns:
        spans |= table.frame[col].str.contains("\n", regex=False).to_numpy(dtype=bool)
    if spans.any():
        [line], _ = table.lines([int(np.argmax(spans))])
        report.notes.append(
            f"{table.name}: quoted fields span lines (rows: {int(spans.sum()):,}, the first "
            f"from line {line}): if a quote there is unbalanced, the lines after it were read "
            "as part of one field"
        )


def _spelling(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.casefold())


def _event_weights(types: pd.Series, weights: Mapping[str, float], report: LoadReport) -> pd.Series:
    """Each row's weight, NaN for a type without one. A type not named exactly is matched
    ignoring case, spaces, dots, dashes and underscores ("addtocart", "Add to cart" are
    "add_to_cart"), said in the notes; two weighed names spelled alike match neither way."""
    codes, found = pd.factorize(types)
    by_spelling: dict[str, list[str]] = {}
    for name in weights:
        by_spelling.setdefault(_spelling(name), []).append(name)
    per_type = np.full(len(found), np.nan)
    for position, name in enumerate(found):
        alike = by_spelling.get(_spelling(name), [])
        if name in weights:
            per_type[position] = weights[name]
        elif name and len(alike) == 1:
            per_type[position] = weights[alike[0]]
            report.notes.append(f"event type {name!r} weighed as {alike[0]!r}")
    rows = np.bincount(codes, minlength=len(found))
    unweighed = [p for p in np.argsort(-rows, kind="stable") if np.isnan(per_type[p]) and found[p]]
    if unweighed:
        counted = ", ".join(f"{found[p]!r} (rows: {rows[p]:,})" for p in unweighed[:5])
        report.notes.append(
            f"event types without a weight: {counted}{', ...' if len(unweighed) > 5 else ''}; "
            "weigh them with --event-weights TYPE=WEIGHT,... (csv.event_weights in POST /train)"
        )
    return pd.Series(per_type[codes], index=types.index)


def _note_zero_ratings(
    stars: pd.Series, keep: np.ndarray, rating_col: str | None, report: LoadReport
) -> None:
    """Where many rows rate 0, say so: some logs mean "taken, not rated" by it (implicit rows
    beside explicit ratings), and such a file loses most of its rows to the rule above."""
    if rating_col is None:
        return
    zero = int((keep & (stars == 0).to_numpy()).sum())
    if zero and zero >= 0.1 * int(keep.sum()):
        report.notes.append(
            f"{rating_col} is 0 in {zero:,} of {int(keep.sum()):,} rows: they count as no "
            "interaction; where 0 means taken but not rated, leave the rating column out "
            "(--rating-col; csv.rating_col in POST /train) and every row counts"
        )


def _decimal_commas(table: TextTable, columns: list[str | None], report: LoadReport) -> None:
    """In a semicolon-separated file (a spreadsheet saved where the comma is the decimal mark),
    numbers such as "3,5" in `columns` are read as 3.5; other values are left to be reported."""
    if table.sep != ";":
        return
    for column in columns:
        if column is None or column not in table.frame.columns:
            continue
        text = table.frame[column]
        comma = text.str.fullmatch(_DECIMAL_COMMA)
        if comma.any():
            table.frame[column] = text.where(~comma, text.str.replace(",", ".", regex=False))
            report.notes.append(f"{table.name}: {column} read with a decimal comma")


def _require(table: TextTable, columns: list[str]) -> None:
    available = [str(c) for c in table.frame.columns]
    missing = [c for c in columns if c not in available]
    if not missing:
        return
    message = f"{table.name}: missing columns {missing}; available columns: {available}"
    if table.header and all(_is_number(name) for name in available):
        message += (
            " (line 1 holds values, not column names: add a header line naming them, or read "
            "the file without one and name the columns by position, 1 to "
            f'{len(available)}: --no-header, or "header": false in POST /train\'s csv)'
        )
    raise DatasetError(message)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _item_table(path: Path, header: bool, items: pd.Series) -> TextTable:
    """The item table, with a header line where the events have one. Where they have none (a
    dump's item file often has none either: MovieLens' `u.item`, `movies.dat`), line 1 is data
    when its first field is an item of the events or a number (no one names a column 42), else
    it names the columns."""
    if header:
        return _read(path, header=True)
    table = _read(path, header=False)
    f = table.frame
    first = str(f.iat[0, 0]) if len(f) and f.columns.size else ""
    if not (first.isdigit() or (first and (items == first).any())):
        return _read(path, header=True)
    return table


def _items(
    product_ids: pd.Series,
    table: TextTable | None,
    item_col: str | None,
    report: LoadReport,
    named: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per interacted item, with the item table's title/category/tags/price where given
    (its columns of those names, any case, or as `named` maps an attribute to a column), joined
    on its column `item_col` (None: its first column)."""
    items = pd.DataFrame(
        {
            "product_id": product_ids,
            "title": pd.Series([None] * len(product_ids), dtype="str"),
            "category": pd.Series([None] * len(product_ids), dtype="str"),
            "price": np.full(len(product_ids), np.nan),
            "tags": pd.Series([None] * len(product_ids), dtype="str"),
        }
    )
    if table is None:
        return items
    _note_how_read(table, report)
    if item_col is None:
        item_col = str(table.frame.columns[0])
        how = "" if table.header else " (no header line: columns named by position)"
        report.notes.append(f"{table.name} joined on its first column, {item_col}{how}")
    named = {a: c for a, c in (named or {}).items() if a in ITEM_ATTRIBUTES}
    _require(table, [item_col, *named.values()])
    f = table.frame
    lower = {str(c).lower(): str(c) for c in f.columns if str(c) != item_col}
    found = {a: lower[a] for a in ITEM_ATTRIBUTES if a in lower} | named
    _decimal_commas(table, [found.get("price")], report)
    if not found and not table.header:
        report.notes.append(
            f"{table.name} has no header line: name its columns by position, e.g. --title-col 2"
        )
    elif not found:
        report.notes.append(f"{table.name} has none of the columns {list(ITEM_ATTRIBUTES)}")
    blank = (f == "").all(axis=1).to_numpy()
    checks = RowChecks(len(f), skip=blank)
    checks.flag(f[item_col] == "", f"missing {item_col}")
    price = pd.Series(np.nan, index=f.index)
    if "price" in found:
        text = f[found["price"]]
        price = pd.to_numeric(text, errors="coerce")
        checks.flag((text != "") & ~np.isfinite(price), "price is not a number", text)
    checks.flag(
        f[item_col].duplicated() & (f[item_col] != ""), f"{item_col} seen before", f[item_col]
    )
    table.report(report, checks)
    ok = checks.ok
    meta = pd.DataFrame({"product_id": f[item_col][ok]})
    for attr in ("title", "category", "tags"):
        if attr in found:
            values = f[found[attr]][ok]
            meta[attr] = values.where(values != "")
    if "price" in found:
        meta["price"] = price[ok]
    meta = meta.set_index("product_id")
    for attr in meta.columns:
        items[attr] = meta[attr].reindex(items["product_id"]).to_numpy()
    unknown = int((~items["product_id"].isin(meta.index)).sum())
    if unknown:
        report.notes.append(f"{unknown} items have no usable row in {table.name}")
    for attr in ("title", "category", "tags"):
        items[attr] = text_column(items[attr])
    items["price"] = items["price"].astype(np.float64)
    return items
