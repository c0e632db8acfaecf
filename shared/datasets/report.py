"""What a loader kept, dropped and could not read, with file and line for every broken row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

MAX_EXAMPLES = 20
# Long cell values (a whole line read with the wrong separator) would flood the summary.
MAX_VALUE_CHARS = 60


class DatasetError(ValueError):
    """The dataset cannot be used; the message says why (shown to users, never a traceback)."""


@dataclass(frozen=True)
class MalformedRow:
    file: str
    line: int  # as a human counts it: the first line of the file (the header, if any) is 1
    reason: str


@dataclass
class LoadReport:
    """rows_read = rows_kept + sum(dropped) + the interactions file's malformed rows.

    `dropped` holds rows that were readable but are no positive interaction (cancellations, guest
    lines, ...); `malformed_counts` holds unreadable rows per "file: reason", of which `malformed`
    keeps the first MAX_EXAMPLES as examples.
    """

    source: str = ""
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    malformed: list[MalformedRow] = field(default_factory=list)
    malformed_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # False when interactions carry no time: ts is then the row order, not a clock.
    has_time: bool = True

    @property
    def n_malformed(self) -> int:
        return sum(self.malformed_counts.values())

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def count_malformed(self, file: str, reason: str, count: int) -> None:
        if count:
            key = f"{file}: {reason}"
            self.malformed_counts[key] = self.malformed_counts.get(key, 0) + count

    def add_examples(self, rows: Sequence[MalformedRow]) -> None:
        self.malformed.extend(rows[: MAX_EXAMPLES - len(self.malformed)])

    def summary(self) -> str:
        lines = [f"{self.source or 'dataset'}: kept {self.rows_kept:,} of {self.rows_read:,} rows"]
        lines += [f"  dropped {n:,}: {reason}" for reason, n in self.dropped.items()]
        lines += [f"  malformed {n:,}: {key}" for key, n in self.malformed_counts.items()]
        if self.malformed:
            shown = "" if len(self.malformed) == self.n_malformed else f" (first {MAX_EXAMPLES})"
            lines.append(f"  malformed rows{shown}:")
            lines += [f"    {m.file} line {m.line}: {m.reason}" for m in self.malformed]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


OK, SKIPPED = -1, -2  # RowChecks codes besides the index of the failed check


class RowChecks:
    """The first problem found in each row, checked one column at a time over whole arrays."""

    def __init__(self, n_rows: int, skip: npt.ArrayLike | None = None) -> None:
        """`skip` rows (blank ones) are neither checked, counted nor kept."""
        self.code = np.full(n_rows, OK, dtype=np.int32)
        if skip is not None:
            self.code[np.asarray(skip, dtype=bool)] = SKIPPED
        self.labels: list[str] = []
        self.values: list[pd.Series | None] = []
        self.quoted: list[bool] = []

    def flag(
        self, bad: npt.ArrayLike, label: str, values: pd.Series | None = None, quote: bool = True
    ) -> None:
        """Mark rows where `bad` holds and no earlier check failed.

        `values` go into the examples: quoted as the offending cell, or as given (a detail).
        """
        mask = np.asarray(bad, dtype=bool) & (self.code == OK)
        if mask.any():
            self.code[mask] = len(self.labels)
            self.labels.append(label)
            self.values.append(values)
            self.quoted.append(quote)

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        ok: npt.NDArray[np.bool_] = self.code == OK
        return ok

    def reason(self, pos: int) -> str:
        k = int(self.code[pos])
        values = self.values[k]
        if values is None:
            return self.labels[k]
        text = str(values.iloc[pos])
        if len(text) > MAX_VALUE_CHARS:
            text = text[:MAX_VALUE_CHARS] + "..."
        return f"{self.labels[k]}: {text!r}" if self.quoted[k] else f"{self.labels[k]}, {text}"
