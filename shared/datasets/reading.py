"""Delimited text and spreadsheets read as `TextTable`s: every column as stripped text, the
separator found from line 1, over-long rows reported with their lines."""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from shared.datasets.report import DatasetError
from shared.datasets.text_table import TextTable, file_kind, open_text
from shared.datasets.unquoted import split_table

# pandas' own message for a skipped over-long row: the line number we report comes from it.
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
# More leading rows wider than the header than this: the header itself is wrong.
MAX_WIDE_LEADING = 3
# The separators tried on line 1, each named as in a load summary ("fields separated by ...")
# and in an error ("is the separator not ...?"); in this order, which breaks ties.
SEPARATORS = {
    ",": ("commas", "a comma"),
    ";": ("semicolons", "a semicolon"),
    "\t": ("tabs", "a tab"),
    "|": ("pipes", "a pipe"),
    "::": ("double colons", "a double colon"),
}
# Files split on these without quoting: MovieLens 1M and 10M's "::", and tabs (TSV has no
# quoting: in Amazon's review dumps or Last.fm's logs a title opening with a stray quote would
# swallow every line up to the next quote into one field, silently).
UNQUOTED_SEPARATORS = frozenset({"::", "\t"})
MAX_HEADER_CHARS = 1 << 20  # of line 1, read to find the separator


def header_separator(path: Path, encoding: str) -> str:
    """The separator that splits the header line (line 1) into the most column names; a comma
    where none splits it more. Spreadsheets saved as CSV in many locales use semicolons, and
    database dumps tabs or pipes: a header names its columns, so it rarely holds another
    separator inside a name. A double colon when it splits line 1 into more fields than any of
    them; `UNQUOTED_SEPARATORS` count their fields without quoting."""
    try:
        with open_text(path, encoding) as handle:
            line = handle.readline(MAX_HEADER_CHARS)  # not a whole file without line breaks
    except (OSError, EOFError):
        return ","  # reading the file proper will say what is wrong with it

    def width(sep: str) -> int:
        try:
            return len(next(csv.reader([line], delimiter=sep), []))
        except csv.Error:  # e.g. a field past the csv module's size limit: not a header
            return 0

    widths = {
        sep: len(line.split(sep)) if sep in UNQUOTED_SEPARATORS else width(sep)
        for sep in SEPARATORS
    }
    # Ties: the longer separator ("1::Toy Story::Animation|Comedy" is three fields either way,
    # and "::" is no accident in a line), else the first, a comma.
    return max(widths, key=lambda sep: (widths[sep], len(sep)))


def read_csv_text(
    path: Path,
    *,
    sep: str | None = ",",
    encodings: Sequence[str] = ("utf-8",),
    header: bool = True,
) -> TextTable:
    """Every column as stripped text, header from line 1; the first encoding that decodes wins.
    `sep=None`: the separator line 1 uses (`header_separator`). `header=False`: line 1 is data
    and the columns are named by position from 1 ("1", "2", ...), as people count them."""
    kind = file_kind(path)
    if kind == "zip":
        raise DatasetError(f"{path.name}: this is a zip/xlsx file, expected CSV text")
    last_error: UnicodeDecodeError | None = None
    for encoding in encodings:
        try:
            if sep is None:
                sep = header_separator(path, encoding)
            if sep in UNQUOTED_SEPARATORS:
                return split_table(path, sep, encodings, header)
            frame, bad = _read_csv(
                path, sep, encoding, "gzip" if kind == "gzip" else None, header=header
            )
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        return TextTable(path, frame, bad, header=header, sep=sep, encoding=encoding)
    raise DatasetError(
        f"{path.name}: not valid {' or '.join(encodings)} text ({last_error})"
    ) from None


def _read_csv(
    path: Path,
    sep: str,
    encoding: str,
    compression: Literal["gzip"] | None,
    *,
    header: bool = True,
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    width, wide = _wide_leading_rows(path, sep, encoding)
    if len(wide) > MAX_WIDE_LEADING:
        than = f"the {width} column names of the header" if header else f"the {width} of line 1"
        raise DatasetError(
            f"{path.name}: the first rows have more fields than {than}: is a column "
            f"{'name ' if header else ''}missing, or is the separator not "
            f"{SEPARATORS[sep][1] if sep in SEPARATORS else repr(sep)}?"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,  # "NA" is a fine product code; empty means empty
                na_filter=False,
                on_bad_lines="warn",
                encoding=encoding,
                compression=compression,
                index_col=False,
                header=0 if header else None,
                skiprows=[number - 1 for number, _ in wide],  # 0-based
            )
        except pd.errors.EmptyDataError:
            raise DatasetError(f"{path.name}: the file is empty") from None
        except (pd.errors.ParserError, OSError, EOFError) as exc:
            raise DatasetError(f"{path.name}: cannot be parsed as CSV ({exc})") from None
    bad = [(number, f"expected {width} fields, found {n}") for number, n in wide]
    for warning in caught:
        matches = _BAD_LINE.findall(str(warning.message))
        if not matches:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        bad += [(int(ln), f"expected {exp} fields, found {saw}") for ln, exp, saw in matches]
    if header:
        frame.columns = [str(c).strip() for c in frame.columns]
    else:
        frame.columns = [str(number) for number in range(1, frame.shape[1] + 1)]
    for col in frame.columns:
        frame[col] = frame[col].str.strip()
    return frame.reset_index(drop=True), bad


def _wide_leading_rows(path: Path, sep: str, encoding: str) -> tuple[int, list[tuple[int, int]]]:
    """Header width, and (record number, fields) of the data rows right after the header that
    are wider than it.

    pandas takes its row width from the first data row when that one is wider, then silently cuts
    every row to the header (index_col=False) or turns the first column into an index; only later
    wide rows become reported bad lines. So such leading rows are found here and skipped there.
    """
    wide: list[tuple[int, int]] = []
    try:
        with open_text(path, encoding) as handle:
            reader = csv.reader(handle, delimiter=sep)
            header = next(reader, [])
            for number, record in enumerate(reader, start=2):
                if not record:
                    continue  # blank line: pandas skips it too
                if len(record) <= len(header) or len(wide) > MAX_WIDE_LEADING:
                    break
                wide.append((number, len(record)))
    except (csv.Error, OSError, EOFError):
        return 0, []  # pandas will say what is wrong with the file
    return len(header), wide


def read_excel_text(path: Path) -> TextTable:
    """First sheet of an .xlsx, every cell as text like read_csv_text gives it."""
    try:
        frame = pd.read_excel(path, sheet_name=0, dtype=object, engine="openpyxl")
    except ImportError:
        raise DatasetError("reading .xlsx needs the openpyxl package") from None
    except Exception as exc:  # openpyxl raises many kinds for damaged files; all mean "unusable"
        raise DatasetError(f"{path.name}: cannot be read as an .xlsx workbook ({exc})") from None
    if frame.shape[1] == 0:
        raise DatasetError(f"{path.name}: the first sheet is empty")
    frame.columns = [str(c).strip() for c in frame.columns]
    for col in frame.columns:
        # Dates become ISO text ("2010-12-01 08:26:00"), whole numbers "17850".
        cells = frame[col]
        frame[col] = cells.where(cells.notna(), "").astype("str").str.strip()
    # read_excel keeps blank rows, so sheet rows and positions line up exactly.
    return TextTable(path, frame.reset_index(drop=True), [], header=True, exact_lines=True)
