"""`file_kind`: what a file is, from its first bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from shared.datasets.report import DatasetError
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
