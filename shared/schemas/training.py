"""Payloads of training jobs: what POST /train takes, and a job's status and result."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from shared.schemas.base import Strict
from shared.training.params import TrainParams

DatasetName = Literal["synthetic", "online-retail", "movielens-100k", "csv"]


JobState = Literal["PENDING", "PROGRESS", "SUCCESS", "FAILURE"]


# CSV header names: printable (no control characters, so they cannot forge log or error lines).
ColumnName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
]

# An event type as a csv names it ("view", "addtocart", "transaction"), and its weight.
EventTypeName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]
FiniteWeight = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]
MAX_EVENT_TYPES = 100


def parse_event_weights(text: str) -> dict[str, float]:
    """Event weights as people type them, "view=1, addtocart=3": TYPE=WEIGHT pairs separated by
    commas, each weight a finite number; ValueError naming the first pair that is not."""
    out: dict[str, float] = {}
    for pair in text.split(","):
        name, sep, raw = (part.strip() for part in pair.partition("="))
        try:
            weight = float(raw)
        except ValueError:
            weight = math.nan
        if not (name and sep and math.isfinite(weight)):
            raise ValueError(f"expected TYPE=WEIGHT, got {pair.strip()!r}")
        out[name] = weight
    return out


class CsvOptions(Strict):
    """How to read a dataset="csv" file: which columns hold what, and an optional item table."""

    # False: line 1 is data (MovieLens' u.data, many dumps), and columns are named by their
    # position from 1: user_col="1", item_col="2" ... With an item table, title_col etc. then name
    # its columns: by position where its line 1 is an item of the events or a number (MovieLens'
    # movies.dat), else by the names on its line 1.
    header: bool = True
    user_col: ColumnName = "user_id"
    item_col: ColumnName = "product_id"
    rating_col: ColumnName | None = None  # without it every row is a positive (rating 1.0)
    time_col: ColumnName | None = None  # unix seconds or datetime text; without it: row order
    # Item attributes: a column of the events file (each item's latest value) or of the item
    # table; without them the item table's title/category/price columns, if any.
    title_col: ColumnName | None = None
    category_col: ColumnName | None = None
    price_col: ColumnName | None = None
    segment_col: ColumnName | None = None  # the user's (country, plan, age band): of the events
    # The event's type (view, add_to_cart, purchase ...): each row is as strong as its type's
    # weight (times the rating, if any); types weighing 0 or less (dislike) are no interaction.
    event_col: ColumnName | None = None
    # Type -> weight for event_col; None: the weights live events get (RECSYS_EVENT_WEIGHTS).
    event_weights: dict[EventTypeName, FiniteWeight] | None = Field(
        default=None, min_length=1, max_length=MAX_EVENT_TYPES
    )
    # CSV with item_col plus any of title/category/price; relative to the data folder.
    items_path: str | None = Field(
        default=None, min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$"
    )

    @model_validator(mode="after")
    def _distinct_columns(self) -> CsvOptions:
        if self.event_weights is not None and self.event_col is None:
            raise ValueError("event_weights need event_col, the column holding each event's type")
        named = [c for c in (self.user_col, self.item_col, self.rating_col, self.time_col) if c]
        if len(set(named)) != len(named):
            raise ValueError(f"user/item/rating/time columns must differ, got {named}")
        attrs = self.attribute_cols()
        # Without header lines the item table's attributes are its own positions ("2": its title,
        # the events' item column), so they differ among themselves only.
        apart = {"title", "category", "price"} if self.items_path and not self.header else set()
        groups = [
            [c for a, c in attrs.items() if a in apart],
            named
            + [c for a, c in attrs.items() if a not in apart]
            + ([self.event_col] if self.event_col else []),
        ]
        for cols in groups:
            if len(set(cols)) != len(cols):
                raise ValueError(f"each column may have one role, got {cols}")
        return self

    def attribute_cols(self) -> dict[str, str]:
        """Attribute ("title", "category", "price", "segment") -> the column named for it."""
        cols = {
            "title": self.title_col,
            "category": self.category_col,
            "price": self.price_col,
            "segment": self.segment_col,
        }
        return {a: c for a, c in cols.items() if c is not None}


class TrainRequest(Strict):
    dataset: DatasetName = "synthetic"
    # Relative to the data folder (RECSYS_DATA_DIR); API requests may not leave it.
    data_path: str | None = Field(default=None, max_length=4096)
    params: TrainParams = Field(default_factory=TrainParams)
    # Merge events ingested from POST /events into the training data (weights by event type).
    include_events: bool = False
    csv: CsvOptions | None = None  # only for dataset="csv"; None means CsvOptions() defaults

    def as_sent(self) -> dict[str, Any]:
        """The fields the request set, and only those (JSON types): what a job carries and a
        version keeps. A worker reads a knob that is present as one the request fixed, so
        defaults written out would turn the recipe search off (training searches only the knobs
        a request leaves unset)."""
        return self.model_dump(mode="json", exclude_unset=True)


class TrainJobStatus(Strict):
    job_id: str
    state: JobState
    progress: float = Field(ge=0.0, le=1.0)
    stage: str | None = None
    model_version: int | None = None
    promoted: bool | None = None
    reason: str | None = None
    error: str | None = None


class TrainJobRecord(TrainJobStatus):
    """One job of GET /train (history): its status plus when it was submitted and ended."""

    submitted_at: datetime
    finished_at: datetime | None = None  # when it succeeded or failed; None while it runs
    dataset: str | None = None  # None until a worker has picked the job up


class TrainJobsResponse(Strict):
    jobs: list[TrainJobRecord]  # newest first


class TrainProgress(Strict):
    """Celery PROGRESS meta."""

    stage: str
    progress: float = Field(ge=0.0, le=1.0)


class TrainResult(Strict):
    """What the Celery task returns (its SUCCESS result)."""

    model_version: int
    promoted: bool
    reason: str
    metrics: dict[str, float]


class JobAccepted(Strict):
    job_id: str
    # True: an identical request was already queued or running; this is that job.
    joined: bool = False
