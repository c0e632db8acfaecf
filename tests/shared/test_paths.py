"""Path confinement to the data root: lexical, nothing read."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.paths import PathRefused, check_confined


@pytest.mark.parametrize("raw", ["/etc/passwd", "../x.csv", "a/../../x.csv", "a/b/../../../x"])
def test_check_confined_refuses_escapes_without_reading(raw: str, tmp_path: Path) -> None:
    with pytest.raises(PathRefused, match="outside the data folder"):
        check_confined(raw, tmp_path / "data")


def test_check_confined_accepts_paths_inside_even_missing_ones(tmp_path: Path) -> None:
    root = tmp_path / "data"  # need not exist: nothing is read (the gateway checks this way)
    assert check_confined("a/../b.csv", root) == root / "b.csv"
    assert check_confined(str(root / "x" / "y.csv"), root) == root / "x" / "y.csv"
    with pytest.raises(PathRefused, match="NUL"):
        check_confined("a\x00b", root)
