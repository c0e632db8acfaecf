"""Files without quoting (MovieLens' u.data, `::`-separated ratings.dat): split on their
separator with every line kept in place, so a position is a line number exactly."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shared.datasets.report import DatasetError
from shared.datasets.text_table import TextTable, file_kind

# Control bytes text does not use, to stand in for a separator of two characters.
_SPARE_SEPARATORS = [bytes([c]) for c in (0x1F, 0x1E, 0x1D, 0x1C, 0x01)]
_BLANK_BYTES = np.frombuffer(b" \t\v\f\r\n", dtype=np.uint8)


def split_table(path: Path, sep: str, encodings: Sequence[str], header: bool) -> TextTable:
    """`split_lines` shaped like `read_csv_text`: names from line 1 (or "1", "2", ... by
    position), stripped fields, and lines with more fields than line 1 reported (`split_lines`
    left them blank, so positions still map to lines exactly). A field quoted whole, as R's
    write.table and pandas' QUOTE_ALL write every text, loses its quotes; any other quote is
    part of its field, and no field spans lines."""
    table = split_lines(path, sep, encodings)
    frame, counts = table.frame, table.field_counts
    assert counts is not None
    for col in frame.columns:
        frame[col] = _unquoted(frame[col].str.strip())
    width = frame.shape[1]
    names = [str(number) for number in range(1, width + 1)]
    if header:
        names = [str(name) for name in frame.iloc[0]]
        frame, counts = frame.iloc[1:].reset_index(drop=True), counts.iloc[1:]
    first = 2 if header else 1
    wide = np.flatnonzero(counts.to_numpy() > width)
    bad = [(first + int(p), f"expected {width} fields, found {counts.iloc[p]}") for p in wide]
    frame.columns = names
    return TextTable(
        path, frame, bad, header=header, sep=sep, encoding=table.encoding, exact_lines=True
    )


def split_lines(
    path: Path, sep: str, encodings: Sequence[str], width: int | None = None
) -> TextTable:
    r"""Headerless, unquoted files (MovieLens): columns 0..width-1 (default: as many as line 1
    has), position p is line p + 1 exactly, `field_counts` each line's own count. A line with
    more fields than `width` is blank in the frame, for the caller to report from its count.

    Read by pandas' C parser with quoting off and only "\n" ending a line, which keeps blank
    and short lines in place (a latin-1 \x85 inside a title is no line break); the counts are
    taken from the bytes with numpy. Splitting each line in Python held every line and every
    field as a Python string at once.
    """
    buffer = bytearray(_plain_bytes(path))
    if not buffer.strip():
        raise DatasetError(f"{path.name}: the file is empty")
    if buffer.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark: no data
        del buffer[:3]
    if not buffer.endswith(b"\n"):  # each line ends in one "\n", for pandas and the counts
        buffer += b"\n"
    if b"\r" in buffer:
        buffer = buffer.replace(b"\r\n", b"\n")
    token = sep.encode("ascii")
    if len(token) > 1:  # the C parser takes one character: a byte the file does not use
        token = next((b for b in _SPARE_SEPARATORS if b not in buffer), b"")
        if not token:
            raise DatasetError(f"{path.name}: cannot be split on {sep!r}")
        buffer = buffer.replace(sep.encode("ascii"), token)
    text = np.frombuffer(buffer, dtype=np.uint8)  # a view: wide lines are blanked in place
    ends = np.flatnonzero(text == ord("\n"))
    starts = np.concatenate(([0], ends[:-1] + 1))
    at = np.flatnonzero(text == token[0])
    found = np.searchsorted(at, ends) - np.searchsorted(at, starts)
    # Each line with its "\n" is one segment: does it hold anything but white space?
    inked = np.logical_or.reduceat(~np.isin(text, _BLANK_BYTES), starts)
    counts = np.where(inked, found + 1, 0)
    width = width or max(int(counts[0]), 1)
    wide = np.flatnonzero(counts > width)
    if len(wide):
        inside = np.zeros(len(text) + 1, dtype=np.int8)  # +1 where a wide line starts, -1 after
        inside[starts[wide]] = 1
        inside[ends[wide]] = -1
        text[np.cumsum(inside[:-1], dtype=np.int8) > 0] = ord(" ")  # each "\n" is kept
    for encoding in encodings:
        try:
            frame = pd.read_csv(
                io.BytesIO(buffer),
                sep=token.decode("ascii"),
                header=None,
                names=range(width),
                index_col=False,
                dtype=str,
                quoting=csv.QUOTE_NONE,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                lineterminator="\n",
                encoding=encoding,
            )
        except UnicodeDecodeError:
            continue
        except pd.errors.ParserError as exc:
            raise DatasetError(f"{path.name}: cannot be split into fields ({exc})") from None
        break
    else:
        raise DatasetError(f"{path.name}: not valid {' or '.join(encodings)} text")
    if len(frame) != len(counts):  # both count "\n": this would be a bug here, said as such
        raise DatasetError(
            f"{path.name}: {len(frame)} rows read from {len(counts)} lines: a bug in the reader"
        )
    if len(wide):
        frame.iloc[wide] = ""  # the spaces that kept the parser from seeing their fields
    return TextTable(
        path,
        frame,
        [],
        header=False,
        sep=sep,
        encoding=encoding,
        exact_lines=True,
        field_counts=pd.Series(counts, dtype=np.int64),
    )


def _unquoted(text: pd.Series) -> pd.Series:
    """Fields that open and close with a quote lose those two, and a doubled quote inside them
    becomes one (CSV's escape); other fields stay as they are."""
    whole = text.str.startswith('"') & text.str.endswith('"') & (text.str.len() >= 2)
    if not whole.any():
        return text
    inner = text[whole].str.slice(1, -1).str.replace('""', '"', regex=False)
    return text.where(~whole, inner)


def _plain_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it is gzip."""
    kind = file_kind(path)
    if kind == "zip":
        raise DatasetError(f"{path.name}: expected a plain text file, found {kind} data")
    data = path.read_bytes()
    if kind == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{path.name}: cannot be decompressed ({exc})") from None
    return data
