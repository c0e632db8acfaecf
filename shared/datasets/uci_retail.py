"""UCI "Online Retail" (Chen, Sain & Guo, 2012): invoice lines of a UK gift-ware shop, 2010-2011.

Accepts the file as published (.xlsx) or as CSV / CSV.gz. Every purchase line becomes one
interaction; cancellations, returns, guest lines and free or negative-price lines are dropped and
counted in the report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shared.datasets.base import Dataset
from shared.datasets.reading import read_csv_text, read_excel_text
from shared.datasets.report import DatasetError, LoadReport, RowChecks
from shared.datasets.text_table import TextTable, file_kind, text_column

NAME = "online-retail"
# Canonical column -> accepted header spellings, compared without case, spaces or underscores.
# The aliases are the column names of the later "Online Retail II" release.
COLUMNS: dict[str, tuple[str, ...]] = {
    "InvoiceNo": ("invoiceno", "invoice"),
    "StockCode": ("stockcode",),
    "Description": ("description",),
    "Quantity": ("quantity",),
    "InvoiceDate": ("invoicedate",),
    "UnitPrice": ("unitprice", "price"),
    "CustomerID": ("customerid",),
    "Country": ("country",),
}
# The published CSV conversions write dates as ISO text or, from Excel, US-style month-first.
US_DATE_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")


def load(path: Path) -> tuple[Dataset, LoadReport]:
    table = _read(path)
    frame = _canonical_columns(table)
    report = LoadReport(source=path.name)
    # Blank spreadsheet rows (read_excel keeps them) carry no data: not rows, not errors.
    data_rows = (frame != "").any(axis=1).to_numpy()
    report.rows_read = int(data_rows.sum()) + len(table.bad_records)

    quantity = pd.to_numeric(frame["Quantity"], errors="coerce")
    price = pd.to_numeric(frame["UnitPrice"], errors="coerce")
    when = _parse_dates(frame["InvoiceDate"])
    checks = RowChecks(len(frame), skip=~data_rows)
    checks.flag(frame["InvoiceNo"] == "", "missing InvoiceNo")
    checks.flag(frame["StockCode"] == "", "missing StockCode")
    checks.flag(frame["InvoiceDate"] == "", "missing InvoiceDate")
    checks.flag(when.isna(), "unparseable InvoiceDate", frame["InvoiceDate"])
    checks.flag(quantity.isna(), "unparseable Quantity", frame["Quantity"])
    checks.flag(price.isna() | ~np.isfinite(price), "unparseable UnitPrice", frame["UnitPrice"])
    table.report(report, checks)
    readable = checks.ok

    customer = frame["CustomerID"].str.replace(r"^(\d+)\.0*$", r"\1", regex=True)
    # Each readable row is counted under the first reason that applies, in this order.
    reasons = (
        ("cancellation", frame["InvoiceNo"].str.upper().str.startswith("C")),
        ("non-positive quantity (return)", quantity <= 0),
        ("non-positive price", price <= 0),
        ("no CustomerID (guest)", customer == ""),
    )
    keep = readable.copy()
    for reason, mask in reasons:
        hit = keep & mask.to_numpy()
        report.drop(reason, int(hit.sum()))
        keep &= ~hit

    kept = pd.DataFrame(
        {
            "user_id": customer[keep],
            "product_id": frame["StockCode"][keep],
            "title": frame["Description"][keep],
            "price": price[keep].astype(np.float64),
            "country": frame["Country"][keep],
            "ts": when[keep].astype("datetime64[s, UTC]").astype(np.int64),
        }
    )
    report.rows_kept = len(kept)
    if kept.empty:
        raise DatasetError(
            f"{path.name}: no purchase lines left after filtering\n{report.summary()}"
        )
    # InvoiceDate has no zone (UK shop time); reading it as UTC keeps order and spacing, off by at
    # most the one summer hour, which no split or recency feature here can notice.
    report.notes.append("InvoiceDate has no time zone: read as UTC")
    return _dataset(kept), report


def _read(path: Path) -> TextTable:
    kind = file_kind(path)
    if kind == "zip":
        return read_excel_text(path)
    if path.suffix.lower() in (".xls", ".xlsb"):
        raise DatasetError(
            f"{path.name}: old Excel formats are not supported; save as .xlsx or CSV"
        )
    # Some re-exports of this dataset are latin-1 (the £ sign in a few descriptions).
    return read_csv_text(path, encodings=("utf-8", "latin-1"))


def _canonical_columns(table: TextTable) -> pd.DataFrame:
    def key(name: str) -> str:
        return name.lower().replace(" ", "").replace("_", "")

    by_key = {key(str(c)): str(c) for c in table.frame.columns}
    found: dict[str, str] = {}
    for canonical, aliases in COLUMNS.items():
        match = next((by_key[a] for a in aliases if a in by_key), None)
        if match is not None:
            found[canonical] = match
    missing = [c for c in COLUMNS if c not in found]
    if missing:
        raise DatasetError(
            f"{table.name}: not the Online Retail format, missing columns {missing}; "
            f"found columns {[str(c) for c in table.frame.columns]}"
        )
    return pd.DataFrame({canonical: table.frame[col] for canonical, col in found.items()})


def _parse_dates(text: pd.Series) -> pd.Series:
    """UTC datetimes, NaT where no accepted format fits (including empty cells)."""
    when = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    for fmt in US_DATE_FORMATS:
        todo = when.isna() & (text != "")
        if not todo.any():
            break
        when[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=True)
    return when


def _most_frequent(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Per key its most frequent non-empty value; ties go to the alphabetically first, so the
    result never depends on row order."""
    pairs = pd.DataFrame({"key": keys, "value": values})
    pairs = pairs[pairs["value"] != ""]
    counts = pairs.groupby(["key", "value"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["key", "n", "value"], ascending=[True, False, True])
    return counts.drop_duplicates("key").set_index("key")["value"]


def _dataset(kept: pd.DataFrame) -> Dataset:
    # One purchase line = rating 1.0. Quantity could weight it, but bulk orders of cheap items
    # would then drown everything else; the ranker already sees repeat purchases as counts.
    interactions = pd.DataFrame(
        {
            "user_id": kept["user_id"].astype("str"),
            "product_id": kept["product_id"].astype("str"),
            "rating": np.ones(len(kept), dtype=np.float64),
            "ts": kept["ts"].to_numpy(dtype=np.int64),
        }
    ).sort_values(["ts", "user_id"], kind="stable", ignore_index=True)

    product_ids = pd.Series(sorted(kept["product_id"].unique()), dtype="str")
    titles = _most_frequent(kept["product_id"], kept["title"])
    prices = kept.groupby("product_id")["price"].median()
    items = pd.DataFrame(
        {
            "product_id": product_ids,
            "title": titles.reindex(product_ids).to_numpy(),
            # The data has no categories; inventing some (from words in titles) would mislead.
            "category": pd.Series([None] * len(product_ids), dtype="str"),
            "price": prices.reindex(product_ids).to_numpy(dtype=np.float64),
        }
    )
    items["title"] = text_column(items["title"])

    user_ids = pd.Series(sorted(kept["user_id"].unique()), dtype="str")
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "age": np.full(len(user_ids), np.nan),
            # A few customers ordered from several countries: take their usual one.
            "segment": _most_frequent(kept["user_id"], kept["country"])
            .reindex(user_ids)
            .to_numpy(),
        }
    )
    users["segment"] = text_column(users["segment"])
    return Dataset(name=NAME, interactions=interactions, items=items, users=users)
