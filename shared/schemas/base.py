"""Building blocks of every payload: strict models, id types, column checks."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
)

# Ids come from shops' catalogs and URLs: keep them printable, bounded and free of separators.
ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"


Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]


# Product codes are the shop's own ("BANK CHARGES", "85123A", "ISBN 978-3-16"): any printable
# text without commas (the `exclude=` separator) or surrounding spaces, at most 64 characters.
PRODUCT_ID_PATTERN = r"^[^\s,\x00-\x1f\x7f](?:[^,\x00-\x1f\x7f]*[^\s,\x00-\x1f\x7f])?$"


ProductId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=PRODUCT_ID_PATTERN)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


C = TypeVar("C", bound=BaseModel)


def same_lengths(model: C, *columns: str) -> C:
    """`model` if its list fields `columns` (entry i of each belongs together) are equally long."""
    if len({len(getattr(model, c)) for c in columns}) > 1:
        raise ValueError(f"{', '.join(columns[:-1])} and {columns[-1]} differ in length")
    return model
