"""Reading helpers that keep file line numbers for the loaders' reports: pandas alone loses
track of them once blank lines, quoted newlines or over-long rows are skipped."""

from __future__ import annotations

import csv
import gzip
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.datasets.report import MAX_EXAMPLES, DatasetError, LoadReport, MalformedRow, RowChecks

# pandas' own message for a skipped over-long row: the line number we report comes from it.
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
# More leading rows wider than the header than this: the header itself is wrong.
MAX_WIDE_LEADING = 3
_SEPARATOR_NAMES = {",": "a comma", ";": "a semicolon", "\t": "a tab", "|": "a pipe"}
# MovieLens 1M and 10M (ratings.dat): no quoting there, so such files are split, not parsed.
UNQUOTED_SEPARATORS = {"::": "double colons"}
MAX_HEADER_CHARS = 1 << 20  # of line 1, read to find the separator
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"  # .xlsx files are zip archives


@dataclass
class TextTable:
    """A delimited file's rows as text ("" where empty) plus what is needed to name their lines.

    frame has a RangeIndex: position p is the p-th data row pandas kept.
    """

    path: Path
    frame: pd.DataFrame
    # (record number as pandas counts them, reason) of rows skipped for having more fields than
    # the header. Pandas counts a quoted multi-line record once, so this is not always the line.
    bad_records: list[tuple[int, str]]
    header: bool = True
    sep: str = ","
    encoding: str = "utf-8"
    # Position p is line first + p with nothing skipped in between (spreadsheets, split_lines).
    exact_lines: bool = False
    # Fields found on each line (split_lines only; 0 for a blank line).
    field_counts: pd.Series | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def lines(
        self, positions: Sequence[int], records: Sequence[int] = ()
    ) -> tuple[list[int], list[int]]:
        """First file line of each data row position and of each bad record number."""
        first = 2 if self.header else 1
        if self.exact_lines or not (positions or records):
            return [first + p for p in positions], list(records)
        found = self._scan(set(positions), set(records))
        if found is None:  # the csv module read the file differently from pandas: best effort
            return [first + p for p in positions], list(records)
        by_pos, by_record = found
        return [by_pos[p] for p in positions], [by_record[r] for r in records]

    def _scan(
        self, positions: set[int], records: set[int]
    ) -> tuple[dict[int, int], dict[int, int]] | None:
        """Walk the records with the csv module (pandas' default dialect) to learn the line each
        starts on; only run when there is something to report, and stopped once all are found."""
        skipped = {r for r, _ in self.bad_records}
        by_pos: dict[int, int] = {}
        by_record: dict[int, int] = {}
        pos = -1
        prev_end = 0
        try:
            with _open_text(self.path, self.encoding) as handle:
                reader = csv.reader(handle, delimiter=self.sep)
                # Like pandas, count every record, blank lines included, from 1 (the header).
                for number, record in enumerate(reader, start=1):
                    start, prev_end = prev_end + 1, reader.line_num
                    if number in records:
                        by_record[number] = start
                    is_data = record and number not in skipped and (number > 1 or not self.header)
                    if is_data:
                        pos += 1
                        if pos in positions:
                            by_pos[pos] = start
                    if len(by_pos) == len(positions) and len(by_record) == len(records):
                        return by_pos, by_record
        except (csv.Error, OSError, UnicodeDecodeError, EOFError):
            return None
        return None

    def report(self, report: LoadReport, checks: RowChecks) -> None:
        """Count the skipped over-long rows and the rows failing `checks`; keep the first examples.

        Over-long rows count as read: they are lines of data the user gave us.
        """
        for _, reason in self.bad_records:
            report.count_malformed(self.name, reason, 1)
        codes = checks.code
        counts = np.bincount(codes[codes >= 0], minlength=len(checks.labels))
        for label, n in zip(checks.labels, counts, strict=True):
            report.count_malformed(self.name, label, int(n))
        room = MAX_EXAMPLES - len(report.malformed)
        if room <= 0:
            return
        positions = [int(p) for p in np.flatnonzero(codes >= 0)[:room]]
        bad = self.bad_records[:room]
        pos_lines, bad_lines = self.lines(positions, [r for r, _ in bad])
        rows = [
            MalformedRow(self.name, line, checks.reason(p))
            for p, line in zip(positions, pos_lines, strict=True)
        ]
        rows += [
            MalformedRow(self.name, line, reason)
            for line, (_, reason) in zip(bad_lines, bad, strict=True)
        ]
        report.add_examples(sorted(rows, key=lambda r: r.line)[:room])


def text_column(values: npt.ArrayLike | pd.Series) -> pd.Series:
    """Text with NaN where missing, in the installed pandas' text dtype.

    Not `.astype("str")`: pandas 2 turns NaN into the string "nan" there.
    """
    return pd.Series(np.asarray(values, dtype=object), dtype="str")


def _open_text(path: Path, encoding: str) -> IO[str]:
    if file_kind(path) == "gzip":
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return path.open(encoding=encoding, newline="")


def file_kind(path: Path) -> str:
    """'gzip', 'zip' (an .xlsx) or 'text', from the first bytes: names can lie."""
    if path.is_dir():
        raise DatasetError(f"{path.name}: is a folder, expected a file")
    if not path.is_file():
        raise DatasetError(f"{path.name}: no such file")
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise DatasetError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head == _ZIP_MAGIC:
        return "zip"
    return "text"


def header_separator(path: Path, encoding: str) -> str:
    """The separator that splits the header line (line 1) into the most column names; a comma
    where none splits it more. Spreadsheets saved as CSV in many locales use semicolons, and
    database dumps tabs or pipes: a header names its columns, so it rarely holds another
    separator inside a name. A double colon (`UNQUOTED_SEPARATORS`) when it splits line 1 into
    more fields than any of them."""
    try:
        with _open_text(path, encoding) as handle:
            line = handle.readline(MAX_HEADER_CHARS)  # not a whole file without line breaks
    except (OSError, EOFError):
        return ","  # reading the file proper will say what is wrong with it

    def width(sep: str) -> int:
        try:
            return len(next(csv.reader([line], delimiter=sep), []))
        except csv.Error:  # e.g. a field past the csv module's size limit: not a header
            return 0

    widths = {sep: width(sep) for sep in _SEPARATOR_NAMES}
    widths |= {sep: len(line.split(sep)) for sep in UNQUOTED_SEPARATORS}
    return max(widths, key=lambda sep: widths[sep])  # ties: the first, a comma


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
                return _split_table(path, sep, encodings, header)
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
            f"{_SEPARATOR_NAMES.get(sep, repr(sep))}?"
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
        with _open_text(path, encoding) as handle:
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


def _split_table(path: Path, sep: str, encodings: Sequence[str], header: bool) -> TextTable:
    """`split_lines` shaped like `read_csv_text`: names from line 1 (or "1", "2", ... by
    position), stripped fields, and lines with more fields than line 1 reported and blanked
    (so positions still map to lines exactly)."""
    table = split_lines(path, sep, encodings)
    frame, counts = table.frame, table.field_counts
    assert counts is not None
    width = int(counts.iloc[0])
    names = [str(number) for number in range(1, width + 1)]
    if header:
        names = [str(name).strip() for name in frame.iloc[0, :width]]
        frame, counts = frame.iloc[1:].reset_index(drop=True), counts.iloc[1:]
    first = 2 if header else 1
    wide = np.flatnonzero(counts.to_numpy() > width)
    bad = [(first + int(p), f"expected {width} fields, found {counts.iloc[p]}") for p in wide]
    frame = frame.iloc[:, :width].copy()
    frame.columns = names
    for col in names:
        frame[col] = frame[col].str.strip()
    frame.iloc[wide] = ""  # reported above: a blank row is read as none
    return TextTable(
        path, frame, bad, header=header, sep=sep, encoding=table.encoding, exact_lines=True
    )


def split_lines(path: Path, sep: str, encodings: Sequence[str]) -> TextTable:
    """Headerless, unquoted files (MovieLens): columns 0..n-1, position p is line p + 1 exactly.

    Splitting ourselves keeps blank and short lines in place, where read_csv would skip or shift
    them (or, worse, widen every row to the first line's field count).
    """
    kind = file_kind(path)
    if kind == "zip":
        raise DatasetError(f"{path.name}: expected a plain text file, found {kind} data")
    data = path.read_bytes()
    if kind == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{path.name}: cannot be decompressed ({exc})") from None
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        break
    else:
        raise DatasetError(f"{path.name}: not valid {' or '.join(encodings)} text")
    text = text.removeprefix("\ufeff")  # a byte-order mark (spreadsheets' "UTF-8 CSV"): no data
    if not text.strip():
        raise DatasetError(f"{path.name}: the file is empty")
    # split("\n"), not splitlines(): a latin-1 \x85 inside a title is no line break.
    lines = pd.Series(text.removesuffix("\n").split("\n"), dtype="str").str.removesuffix("\r")
    frame = lines.str.split(sep, expand=True, regex=False).fillna("")
    frame.columns = list(range(frame.shape[1]))
    counts = (lines.str.count(re.escape(sep)) + 1).where(lines.str.strip() != "", 0)
    return TextTable(
        path,
        frame,
        [],
        header=False,
        sep=sep,
        encoding=encoding,
        exact_lines=True,
        field_counts=counts.astype(np.int64),
    )
