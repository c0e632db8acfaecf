"""Payloads of the model registry: a version's manifest, evaluation, and the /models answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.base import Strict


class ArtifactInfo(Strict):
    sha256: str
    size: int


class EvaluationSummary(Strict):
    """A version's held-out evaluation, as the Evaluation page plots it: every model's ranking
    metrics at `k` (the two-stage model and its baselines, same users) and NDCG@K curves."""

    protocol: str
    k: int = Field(ge=1)
    n_users: int = Field(ge=0)
    models: dict[str, dict[str, float]]
    ndcg_curves: dict[str, list[float]] = Field(default_factory=dict)  # [K - 1] is NDCG@K


Knob = float | int | bool | str


class TuningTrial(Strict):
    """One recipe tried on the validation splits: its knobs and mean validation NDCG@10."""

    number: int
    stage: Literal["stage_one", "ranker"]
    params: dict[str, Knob]
    score: float | None  # None: pruned after a bad first split, or failed
    state: Literal["complete", "pruned", "failed"]
    seconds: float
    # where the trial's knobs came from when the sampler did not draw them: "defaults", a baseline
    # stage one can become ("ease", "item_knn", "als"), "version N" (the recipe of the version
    # serving on the same data) or "ensemble size" (the chosen ranker with more members)
    origin: str | None = None


class TuningReport(Strict):
    """How training chose its recipe (shared/training/tuning.py): the trials, what won, and the
    served pipeline against the baselines on the same validation splits."""

    budget_seconds: float
    spent_seconds: float
    # where that time went, phase by phase in the order they ran (e.g. the ranker's lists, a
    # second look): what the choice needs runs to its end past the budget
    phase_seconds: dict[str, float] = Field(default_factory=dict)
    validation: str  # how the validation splits were carved from the training data
    n_splits: int
    trials: list[TuningTrial] = Field(default_factory=list)
    chosen: dict[str, Knob] = Field(default_factory=dict)  # the fields the search set
    validation_ndcg: dict[str, float] = Field(default_factory=dict)  # per model, @10
    decision: str  # "two_stage", or "stage_one" when the ranker steps aside
    reason: str
    note: str | None = None  # e.g. why the fixed defaults were used


class ModelManifest(Strict):
    version: int
    created_at: datetime
    dataset: str
    params: dict[str, object] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    artifacts: dict[str, ArtifactInfo]
    evaluation: EvaluationSummary | None = None  # None for versions trained before it was kept
    tuning: TuningReport | None = None  # None for versions trained before training tuned


class ModelSummary(Strict):
    version: int
    created_at: datetime
    dataset: str
    metrics: dict[str, float]


class ModelsResponse(Strict):
    current: int | None
    versions: list[ModelSummary]


class ModelDetail(ModelSummary):
    """GET /models/{version}: one version's summary, how it was trained and evaluated."""

    current: bool
    params: dict[str, object]
    evaluation: EvaluationSummary | None
    tuning: TuningReport | None = None


class ModelActivated(Strict):
    current: int


class ModelPublished(Strict):
    """Message on the registry's pub/sub channel whenever `current` moves."""

    version: int


class OffPolicyEstimate(Strict):
    """`GET /models/{version}/estimate`: the version's exploration-slot click rate estimated
    from logged draws (shared/offpolicy.py); `ips`/`snips` are null without enough support."""

    version: int
    m: int
    draws: int
    matches: int
    clicks: int
    ips: float | None
    snips: float | None
    effective_sample_size: float
    enough_support: bool
    note: str
    logged_click_rate: float | None  # the draws' own click rate: what uniform picks earned
