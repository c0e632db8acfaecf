"""`split_lines`: unquoted files split with every line kept in place and counted."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from shared.datasets.report import DatasetError
from shared.datasets.unquoted import split_lines


def _split(
    path: Path, data: bytes, sep: str, **kwargs: object
) -> tuple[list[list[str]], list[int]]:
    path.write_bytes(data)
    table = split_lines(path, sep, ("utf-8", "latin-1"), **kwargs)  # type: ignore[arg-type]
    assert table.field_counts is not None and table.exact_lines
    return table.frame.to_numpy().tolist(), table.field_counts.tolist()


def test_each_line_keeps_its_place(tmp_path: Path) -> None:
    data = b"1::a::x\n\n2::b\n   \n3::c::y::extra\n4:: d ::z\n"
    rows, counts = _split(tmp_path / "r.dat", data, "::")
    assert rows == [
        ["1", "a", "x"],
        ["", "", ""],  # blank: count 0
        ["2", "b", ""],  # short: padded, its count says so
        ["   ", "", ""],  # only spaces: blank too
        ["", "", ""],  # wider than line 1: blank, its count for the caller
        ["4", " d ", "z"],  # fields as written; the callers strip
    ]
    assert counts == [3, 0, 2, 0, 4, 3]


@pytest.mark.parametrize(
    ("data", "rows"),
    [
        (b"1::a", [["1", "a"]]),  # no newline at the end
        (b"1::a\n\n", [["1", "a"], ["", ""]]),  # a blank last line is a line
        (b"1::a\r\n2::b\r\n", [["1", "a"], ["2", "b"]]),  # Windows line ends
        (b"\xef\xbb\xbf1::a\n", [["1", "a"]]),  # a byte-order mark is no data
        (b"1::a\rb\n", [["1", "a\rb"]]),  # only "\n" ends a line
        (b"1::\x85b\n2::c\n", [["1", "\x85b"], ["2", "c"]]),  # latin-1: no line break in a title
        (b"1::a\x1fb\n", [["1", "a\x1fb"]]),  # the stand-in separator byte in the data
        (b"1:::a\n", [["1", ":a"]]),  # split left to right, as str.split does
    ],
)
def test_line_ends_and_odd_bytes(tmp_path: Path, data: bytes, rows: list[list[str]]) -> None:
    assert _split(tmp_path / "r.dat", data, "::")[0] == rows


def test_one_character_separators_gzip_and_a_given_width(tmp_path: Path) -> None:
    data = b"1\t2\n3\t4\t5\t6\n7\t8\t9\n"
    rows, counts = _split(tmp_path / "u.data", data, "\t", width=3)
    assert rows == [["1", "2", ""], ["", "", ""], ["7", "8", "9"]] and counts == [2, 4, 3]
    zipped = tmp_path / "u.data.gz"
    zipped.write_bytes(gzip.compress(data))
    table = split_lines(zipped, "\t", ("utf-8",))
    assert table.frame.to_numpy().tolist() == [["1", "2"], ["", ""], ["", ""]]


def test_latin1_when_not_utf8_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "u.item"
    path.write_bytes("1|Café|x\n".encode("latin-1"))
    table = split_lines(path, "|", ("utf-8", "latin-1"))
    assert table.encoding == "latin-1" and table.frame.iloc[0, 1] == "Café"
    with pytest.raises(DatasetError, match="not valid utf-8 text"):
        split_lines(path, "|", ("utf-8",))
    path.write_bytes(b"\n \n")
    with pytest.raises(DatasetError, match="the file is empty"):
        split_lines(path, "|", ("utf-8",))
