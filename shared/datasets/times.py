"""Event times as unix seconds, from whatever a log holds: unix seconds or milliseconds, ISO
8601 with or without a zone, or one other datetime format guessed from its first values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from shared.datasets.report import LoadReport

# Unix times above this are not seconds: 1e11 s is the year 5138, 1e11 ms is 1973.
MILLISECONDS_ABOVE = 1e11
# "Z", "+01:00" or "-0500" at the end of a datetime text.
ZONE_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"
GUESS_FROM = 5  # distinct unparsed values to try guessing a format from


def parse_times(text: pd.Series, column: str, report: LoadReport) -> pd.Series:
    """Unix seconds as float (NaN where unreadable) from unix times or datetime text."""
    filled = text[text != ""]
    numbers = pd.to_numeric(filled, errors="coerce")
    if len(filled) and numbers.notna().all():
        if numbers.abs().max() > MILLISECONDS_ABOVE:
            report.notes.append(f"{column} looks like unix milliseconds: divided by 1000")
            numbers = numbers / 1000
        whole: pd.Series = np.floor(numbers.where(np.isfinite(numbers)))
        return whole.reindex(text.index)
    zoned = filled.str.contains(ZONE_SUFFIX, regex=True)
    seconds = _utc_seconds(filled, zoned, "ISO8601")
    todo = seconds.isna()
    if todo.any():
        fmt = _guess_format(filled[todo])
        if fmt is not None:
            seconds[todo] = _utc_seconds(filled[todo], zoned[todo], fmt)
            report.notes.append(f"{column} read with format {fmt!r}")
    if (~zoned & seconds.notna()).any():
        report.notes.append(f"{column} values without a time zone are read as UTC")
    return seconds.reindex(text.index)


def _utc_seconds(text: pd.Series, zoned: pd.Series, fmt: str) -> pd.Series:
    """Unix seconds as float, NaN where `fmt` does not fit.

    Values with and without a zone are parsed apart: pandas 2 lends a naive value the offset of
    zoned ones in the same call.
    """
    out = pd.Series(np.nan, index=text.index)
    for part in (zoned, ~zoned):
        if part.any():
            when = pd.to_datetime(text[part], format=fmt, errors="coerce", utc=True).dropna()
            out[when.index] = when.astype("datetime64[s, UTC]").astype(np.int64).astype(float)
    return out


def _guess_format(text: pd.Series) -> str | None:
    """One format guessed from the first values that give one, applied to all the rest at once
    (parsing value by value would be slow)."""
    for value in pd.unique(text)[:GUESS_FROM]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the guesser warns about day-first guesses
            fmt = guess_datetime_format(str(value))
        if fmt is not None:
            return fmt
    return None
