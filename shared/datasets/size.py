"""A file too big to read on this machine, refused before it is read; data too big to train on,
refused before training starts.

Reading an interactions file costs memory per row (the text table, then the checked columns and
the interactions built from them). A file of hundreds of millions of rows would have the process
killed by the system part way through, with no word of why; it is refused first, saying what it
would need.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from shared.datasets.base import Dataset
from shared.datasets.report import DatasetError
from shared.datasets.text_table import file_kind
from shared.ml.memory import available_bytes

SAMPLE_BYTES = 1 << 20  # read from the start of a file to measure its lines
# Peak memory per row while a file is read and checked: measured on four short columns (MovieLens
# 10M's shape, docs/decisions.md 2026-12-07 eleventh); wider rows cost more, so this is a floor.
READ_BYTES_PER_ROW = 200
# Memory per interaction that training needs beyond what reading left in use (its splits, the
# user x item statistics, the ranker's lists): below what a 10M-row log took (docs/decisions.md
# 2026-12-07 thirteenth), so only a certain failure is refused.
TRAIN_BYTES_PER_ROW = 300


def estimated_rows(path: Path) -> int:
    """The file's lines, from the mean length of those in its first SAMPLE_BYTES (of the text,
    for a gzip file: its size scaled by how much that start inflates)."""
    kind = file_kind(path)  # first: a missing file or a folder is said as such
    size = path.stat().st_size
    with path.open("rb") as raw:
        packed = raw.read(SAMPLE_BYTES)
    text = packed
    if kind == "gzip":
        inflate = zlib.decompressobj(wbits=31)  # 31: a gzip member, header and all
        try:
            text = inflate.decompress(packed, 64 * SAMPLE_BYTES)
        except zlib.error:
            return 0  # the reader says what is wrong with it
        used = len(packed) - len(inflate.unconsumed_tail) - len(inflate.unused_data)
        size = round(size * len(text) / max(1, used))
    lines = text.count(b"\n") or 1
    if len(text) >= size:
        return lines
    return round(size * lines / max(1, len(text)))


def require_readable(path: Path) -> None:
    """Refuse (DatasetError) a file whose rows would not fit in the memory available."""
    rows = estimated_rows(path)
    _require_memory(rows * READ_BYTES_PER_ROW, f"{path.name}: ~{rows:,} rows; reading them")


def require_trainable(data: Dataset) -> None:
    """Refuse (DatasetError) data whose training would not fit in the memory available now: the
    system would kill the process part way (a worker's job lost without a word)."""
    rows = len(data.interactions)
    what = f"{data.name}: {rows:,} interactions; training on them"
    _require_memory(rows * TRAIN_BYTES_PER_ROW, what, more=" more")


def _require_memory(need: int, what: str, more: str = "") -> None:
    free = available_bytes()
    if need > free:
        raise DatasetError(
            f"{what} needs at least ~{need / 2**30:.1f} GiB{more} and {free / 2**30:.1f} GiB "
            "are available. Take a sample first (e.g. a share of the users) or use a machine "
            "with more memory"
        )
