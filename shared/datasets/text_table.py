"""A delimited file's rows as text, and what it takes to name their lines in a report: pandas
alone loses track of them once blank lines, quoted newlines or over-long rows are skipped."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.datasets.report import MAX_EXAMPLES, DatasetError, LoadReport, MalformedRow, RowChecks

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"  # .xlsx files are zip archives
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")  # byte-order marks; spreadsheets' "Unicode Text"


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
            with open_text(self.path, self.encoding) as handle:
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
        reasons = len(checks.labels) + bool(self.bad_records)
        if room <= 0 or not reasons:
            return
        # An equal share of the examples for each reason first, then the earliest of the rest: a
        # reason of a few rows is shown beside one of thousands that comes first in the file.
        failed = np.flatnonzero(codes >= 0)
        share = max(1, room // reasons)
        bad = self.bad_records[:share]
        firsts = [np.flatnonzero(codes == k)[:share] for k in range(len(checks.labels))]
        picked = np.sort(np.concatenate([failed[:0], *firsts]))  # disjoint: one code per row
        extra = room - len(picked) - len(bad)
        if extra > 0:
            early = failed[: room + len(picked)]
            picked = np.union1d(picked, np.setdiff1d(early, picked)[:extra])
        positions = [int(p) for p in picked]
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


def open_text(path: Path, encoding: str) -> IO[str]:
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
    if head.startswith(_UTF16_MARKS):  # read as latin-1, its column names would be noise
        raise DatasetError(
            f'{path.name}: UTF-16 text (a spreadsheet\'s "Unicode Text"): save it as '
            '"CSV UTF-8", or convert it: iconv -f UTF-16 -t UTF-8'
        )
    return "text"
