"""A/B experiments on the wire: what `POST /experiments` takes, what `GET /experiments/{name}`
answers. The first arm is the control; every other arm is compared with it."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.schemas.base import Id, Strict

# Names go into Redis keys and into served-list records as "<experiment>/<arm>".
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# Rates per served list (a list counts once however many of its items were clicked), or per item
# shown (`ctr`). Each is a proportion: what the sequential test compares.
PrimaryMetric = Literal["click_rate", "add_to_cart_rate", "conversion_rate", "ctr"]
Status = Literal["running", "stopped", "promoted"]
SHARE_TOLERANCE = 1e-6


class ArmIn(Strict):
    name: Name
    version: int = Field(ge=1, le=2**31)
    share: float = Field(gt=0, le=1)


class Guardrails(Strict):
    """Any of them breached stops the experiment by itself: traffic goes back to the current
    version. None switches one off. They judge an arm once it served `min_lists` answers."""

    max_p99_ms: float | None = Field(
        default=None, gt=0, description="p99 of the arm's last 1,000 answers (gateway time)"
    )
    max_degraded_rate: float | None = Field(
        default=0.05, ge=0, le=1, description="share of the arm's answers that were degraded"
    )
    max_primary_drop: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="stop when the arm's primary metric is, with the test's confidence, lower "
        "than the control's by more than this fraction of the control's",
    )
    min_lists: int = Field(default=200, ge=1, le=10**9)


class ExperimentIn(Strict):
    name: Name
    arms: list[ArmIn] = Field(min_length=2, max_length=10)
    primary_metric: PrimaryMetric = "click_rate"
    guardrails: Guardrails = Field(default_factory=Guardrails)
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="error rate of the verdict")
    mixing_sd: float = Field(
        default=0.02,
        gt=0,
        le=1,
        description="the sequential test's prior scale of a difference in the primary metric",
    )

    @model_validator(mode="after")
    def _arms(self) -> ExperimentIn:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names repeat: {names}")
        total = math.fsum(a.share for a in self.arms)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"arm shares sum to {total:g}, not 1")
        return self


class Experiment(ExperimentIn):
    """As stored: what was asked, plus the bucketing salt and what happened to it."""

    salt: str
    status: Status = "running"
    created: float
    ended: float | None = None
    reason: str | None = None  # why it stopped (a breached guardrail says which)
    promoted: str | None = None  # the arm whose version became current
    # who ended it: a breached guardrail, a stop request, or a promotion (None while running,
    # and for experiments ended before this field existed)
    ended_by: Literal["guardrail", "stop", "promote"] | None = None


class Difference(Strict):
    """An arm's primary metric minus the control's, with an always-valid confidence interval."""

    estimate: float
    low: float
    high: float


class ArmReport(Strict):
    name: str
    version: int
    share: float
    lists: int
    items_shown: int
    degraded: int
    clicks: int
    add_to_cart: int
    purchases: int
    revenue: float
    lists_clicked: int
    lists_with_cart: int
    lists_converted: int
    primary: float | None  # the primary metric's value
    p99_ms: float | None
    vs_control: Difference | None = None  # None for the control, or before any data


class ExperimentReport(Strict):
    experiment: Experiment
    arms: list[ArmReport]
    verdict: str  # one sentence: what the data says now
    winner: str | None = None  # an arm that beats every other, with the test's confidence


class Assignments(Strict):
    # As many as a batch of /recommend: the request body stays within GATEWAY_MAX_BODY_BYTES.
    users: list[Id] = Field(min_length=1, max_length=1000)


class ArmAssignments(Strict):
    experiment: str
    arms: dict[str, str]  # user -> arm name


class StopRequest(Strict):
    reason: str = Field(default="stopped by hand", min_length=1, max_length=500)


class PromoteRequest(Strict):
    arm: Name | None = None  # default: the report's winner
