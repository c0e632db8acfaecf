"""Building blocks of every payload: strict models, id types, column checks."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
)

# Ids are the shop's own: e-mail addresses, UUIDs, accented names, codes with spaces ("BANK
# CHARGES", "ISBN 978-3-16"). One rule for users and products on every endpoint: printable text
# (no control characters) without surrounding spaces, without commas (the `exclude=` separator)
# or slashes (a path's separator, even URL-encoded: servers decode %2F before routing), not dots
# alone, at most ID_MAX_CHARS characters. In paths and queries they travel URL-encoded.
ID_MAX_CHARS = 128
_C = r"\x00-\x1f\x7f-\x9f"
_X, _S, _N = rf"[^,/{_C}]", rf"[^\s,/{_C}]", rf"[^\s,./{_C}]"  # any, not space, not space or dot
# At least one character that is not a dot: "." and ".." would be read as path steps in a URL.
ID_PATTERN = rf"^(?:{_N}|{_N}{_X}*{_S}|{_S}{_X}*{_N}|{_S}{_X}*{_N}{_X}*{_S})$"


Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


C = TypeVar("C", bound=BaseModel)


def same_lengths(model: C, *columns: str) -> C:
    """`model` if its list fields `columns` (entry i of each belongs together) are equally long."""
    if len({len(getattr(model, c)) for c in columns}) > 1:
        raise ValueError(f"{', '.join(columns[:-1])} and {columns[-1]} differ in length")
    return model
