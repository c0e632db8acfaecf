"""Pick the loader for a dataset name; paths from API-triggered jobs stay inside the data root."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from shared.datasets import csv_interactions, movielens, synthetic, uci_retail
from shared.datasets.base import Dataset
from shared.datasets.report import DatasetError, LoadReport
from shared.paths import PathRefused, locate
from shared.schemas.base import ID_MAX_CHARS, ID_PATTERN
from shared.schemas.training import CsvOptions, TrainRequest
from shared.settings import get_common_settings

__all__ = [
    "DatasetError",
    "LoadReport",
    "load_dataset",
    "load_with_report",
    "resolve_path",
]

log = logging.getLogger(__name__)

# Where the team's copies live under the data root (see the data folder's README).
DEFAULT_PATHS = {
    "online-retail": Path("online-retail") / "online_retail.csv.gz",
    "movielens-100k": Path("movielens-100k"),
}


def load_dataset(request: TrainRequest, data_root: Path, *, allow_outside: bool = False) -> Dataset:
    data, report = load_with_report(request, data_root, allow_outside=allow_outside)
    log.info("%s", report.summary())
    return data


def load_with_report(
    request: TrainRequest, data_root: Path, *, allow_outside: bool = False
) -> tuple[Dataset, LoadReport]:
    """The dataset and what loading it kept, dropped and could not read (see `_load`); rows
    whose ids the HTTP API could not carry are dropped and counted, never served broken."""
    data, report = _load(request, data_root, allow_outside=allow_outside)
    if request.params.graph_session_minutes > 0 and not report.has_time:
        # Sessions cut by gaps in row numbers would be noise presented as a signal.
        raise DatasetError(
            "graph_session_minutes needs interaction times, and this data has none "
            "(no time column): leave it 0 or name the column with time_col"
        )
    return keep_api_ids(data, report), report


def keep_api_ids(data: Dataset, report: LoadReport) -> Dataset:
    """Interactions whose user and product ids fit the API's id patterns (shared.schemas.base)."""
    ints = data.interactions
    users_ok = _fits(ints["user_id"])
    products_ok = _fits(ints["product_id"])
    for bad, what in ((~users_ok, "user"), (~products_ok, "product")):
        if bad.any():
            col = f"{what}_id"
            examples = ", ".join(repr(v) for v in ints.loc[bad, col].drop_duplicates().head(3))
            reason = f"{what} id not usable by the API: 1-{ID_MAX_CHARS} printable characters, "
            reason += "no commas, no spaces at either end"
            report.drop(reason, int(bad.sum()))
            report.notes.append(f"{reason}: e.g. {examples}")
    keep = users_ok & products_ok
    if keep.all():
        return data
    report.rows_kept -= int((~keep).sum())
    return replace(data, interactions=ints[keep].reset_index(drop=True))


def _fits(ids: pd.Series) -> pd.Series:
    text = ids.astype(str)
    return text.str.fullmatch(ID_PATTERN) & (text.str.len() <= ID_MAX_CHARS)


def _load(
    request: TrainRequest, data_root: Path, *, allow_outside: bool = False
) -> tuple[Dataset, LoadReport]:
    """The dataset and what loading it kept, dropped and could not read.

    `allow_outside` lets local callers (a CLI user naming their own file) read paths outside
    `data_root`; requests arriving over the API must not, or they could probe the server's files.
    """
    if request.csv is not None and request.dataset != "csv":
        raise DatasetError(f"csv options only apply to dataset 'csv', not {request.dataset!r}")
    if request.dataset == "synthetic":
        p = request.params
        data = synthetic.generate(
            n_users=p.n_users,
            n_products=p.n_products,
            n_days=p.n_days,
            seed=p.seed,
            n_new_products=p.n_new_products,
        )
        n = len(data.interactions)
        return data, LoadReport(source="synthetic", rows_read=n, rows_kept=n)
    if request.dataset == "online-retail":
        path = resolve_path(
            request.data_path, DEFAULT_PATHS["online-retail"], data_root, allow_outside
        )
        return uci_retail.load(path)
    if request.dataset == "movielens-100k":
        path = resolve_path(
            request.data_path, DEFAULT_PATHS["movielens-100k"], data_root, allow_outside
        )
        if path.is_file():  # someone pointed at u.data: the loader wants its folder
            path = path.parent
        return movielens.load(path)
    if request.dataset == "csv":
        if request.data_path is None:
            raise DatasetError("dataset 'csv' needs data_path, the interactions file")
        path = resolve_path(request.data_path, None, data_root, allow_outside)
        opts = request.csv or CsvOptions()
        weights = opts.event_weights
        if weights is None:  # the weights live events get, so training and serving agree
            weights = get_common_settings().event_weights
        items_path = (
            None
            if opts.items_path is None
            else resolve_path(opts.items_path, None, data_root, allow_outside)
        )
        return csv_interactions.load(
            path,
            opts.user_col,
            opts.item_col,
            opts.rating_col,
            opts.time_col,
            items_path,
            opts.attribute_cols(),
            opts.event_col,
            weights,
            header=opts.header,
        )
    raise DatasetError(f"dataset {request.dataset!r} is not supported by this version yet")


def resolve_path(
    raw: str | None, default: Path | None, data_root: Path, allow_outside: bool = False
) -> Path:
    """`raw` (or `default`) relative to `data_root`; must exist and, unless allowed, stay inside."""
    given = default if raw is None else raw
    if given is None:
        raise DatasetError("no data path given")
    try:
        path, inside = locate(given, data_root)
    except PathRefused as exc:
        raise DatasetError(str(exc)) from None
    if not allow_outside and not inside:
        raise DatasetError(f"data path {str(given)!r} is outside the data folder")
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:  # over-long names, unreadable folders
        raise DatasetError(f"data path {str(given)!r} is not usable: {exc}") from None
    if not exists:
        where = "" if raw is not None else f" (the default location under {data_root})"
        raise DatasetError(f"data path {str(given)!r} does not exist{where}")
    return path
