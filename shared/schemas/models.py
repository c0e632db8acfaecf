"""Payloads of the model registry: a version's manifest, evaluation, and the /models answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    Field,
)

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


class ModelManifest(Strict):
    version: int
    created_at: datetime
    dataset: str
    params: dict[str, object] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    artifacts: dict[str, ArtifactInfo]
    evaluation: EvaluationSummary | None = None  # None for versions trained before it was kept


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


class ModelActivated(Strict):
    current: int


class ModelPublished(Strict):
    """Message on the registry's pub/sub channel whenever `current` moves."""

    version: int
