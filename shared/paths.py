"""Confinement of dataset paths to the data root, lexically (nothing is read, nothing imported
beyond the standard library): the gateway refuses a training request naming a path outside the
data folder before anything is queued, and the loader checks again before reading."""

from __future__ import annotations

import os
from pathlib import Path


class PathRefused(ValueError):
    """The path cannot be used; the message says why (shown to users)."""


def locate(given: str | Path, data_root: Path) -> tuple[Path, bool]:
    """The normalized path `given` names under `data_root`, and whether it stays inside."""
    if "\x00" in str(given):  # some path calls reject it, others quietly answer "no such file"
        raise PathRefused(f"data path {str(given)!r} is not usable: it contains a NUL byte")
    try:
        root = Path(os.path.normpath(data_root.absolute()))
        # An absolute `given` replaces root. Lexical normalization catches "../" escapes while
        # symlinks an admin put inside the data folder keep working.
        path = Path(os.path.normpath(root / given))
    except (OSError, ValueError) as exc:
        raise PathRefused(f"data path {str(given)!r} is not usable: {exc}") from None
    return path, path.is_relative_to(root)


def check_confined(raw: str | Path, data_root: Path) -> Path:
    """`raw` relative to `data_root`, if it stays inside it; PathRefused otherwise."""
    path, inside = locate(raw, data_root)
    if not inside:
        raise PathRefused(f"data path {str(raw)!r} is outside the data folder")
    return path
