"""`file_kind`: what a file is, from its first bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from shared.datasets import csv_interactions
from shared.datasets.report import MAX_EXAMPLES, DatasetError
from shared.datasets.text_table import file_kind


def test_kinds_from_the_first_bytes(tmp_path: Path) -> None:
    text, zipped = tmp_path / "e.csv", tmp_path / "e.xlsx"
    text.write_text("user,item\na,x\n")
    zipped.write_bytes(b"PK\x03\x04rest")
    assert file_kind(text) == "text" and file_kind(zipped) == "zip"
    named_wrong = tmp_path / "e.txt"
    named_wrong.write_bytes(gzip.compress(b"user,item\n"))
    assert file_kind(named_wrong) == "gzip"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le"])
def test_utf16_text_is_refused_with_what_to_do(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "export.txt"
    mark = {"utf-16-be": b"\xfe\xff", "utf-16-le": b"\xff\xfe"}.get(encoding, b"")
    path.write_bytes(mark + "user\titem\r\na\tx\r\n".encode(encoding))
    with pytest.raises(DatasetError, match=r"export\.txt: UTF-16 text .* iconv -f UTF-16"):
        file_kind(path)


def test_folders_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a folder"):
        file_kind(tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        file_kind(tmp_path / "nothing.csv")


def test_examples_show_every_reason_not_only_the_first_one_met(tmp_path: Path) -> None:
    # Fifty rows of one reason first, then one of another and one over-long line at the end.
    path = tmp_path / "events.csv"
    rows = [f"u{i},p{i},x" for i in range(50)] + ["u50,,1", "u51,p51,1", "u52,p52,1,9"]
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    _, report = csv_interactions.load(path, "user", "item", "rating")
    assert report.malformed_counts == {
        "events.csv: expected 3 fields, found 4": 1,
        "events.csv: missing item": 1,
        "events.csv: rating is not a number": 50,
    }
    shown = [(m.line, m.reason) for m in report.malformed]
    assert len(shown) == MAX_EXAMPLES
    assert (52, "missing item") in shown
    assert (54, "expected 3 fields, found 4") in shown
    # the rest of the room goes to the first rows, in file order
    assert shown[:18] == [(i + 2, "rating is not a number: 'x'") for i in range(18)]
    assert [line for line, _ in shown] == sorted(line for line, _ in shown)
