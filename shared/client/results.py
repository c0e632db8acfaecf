"""What the client returns where the gateway's answer is not one schema model of shared/: a
list of items with what its headers say, and GET /readyz's answer (declared by no model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.schemas.serving import RecommendedItem


@dataclass(frozen=True)
class Recommendations:
    """A list answer (`/recommend`, `/popular`, `/items/{product}/similar`): the items best
    first, the model version that answered (`X-Model-Version`) and, when a stage failed or the
    gateway was overloaded, how it answered instead (`X-Degraded`: ranker, candidate, overload);
    for a user in a running experiment, the arm that answered (`X-Experiment-Arm`); the id the
    answer was logged under (`X-Request-ID`): events the list brings send it as `request_id`."""

    items: list[RecommendedItem]
    version: int | None
    degraded: str | None
    arm: str | None = None
    request_id: str | None = None


class Readiness(BaseModel):
    """`GET /readyz` when both stages serve a model: the version each one loaded. The gateway
    declares no model for it, so unknown fields are kept rather than refused."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok"]
    service: str
    versions: dict[str, int | None]
    # Stages serving an older version because they refused the current one: why, per stage.
    refused: dict[str, str] = {}
