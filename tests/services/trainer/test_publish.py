"""The promotion gate between a trained model and the serving pointer."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.trainer.publish import (
    data_identity,
    promotion_decision,
    train_and_publish,
    warm_start,
)
from services.trainer.settings import TrainerSettings
from shared.registry import ModelRegistry
from shared.schemas.training import CsvOptions, TrainRequest
from shared.settings import get_common_settings
from shared.training.params import TrainParams
from tests.conftest import SMALL_DATA

REQ = TrainRequest(dataset="synthetic", params=TrainParams(n_users=100))


def _current(registry: ModelRegistry, request: TrainRequest, score: float) -> None:
    registry.publish(
        {"x": b"1"},
        dataset=request.dataset,
        metrics={"valid_ndcg@10": score},
        params={**request.model_dump(mode="json"), "data": data_identity(request)},
    )


def test_first_model_is_promoted(registry: ModelRegistry) -> None:
    assert promotion_decision(registry, REQ, {"valid_ndcg@10": 0.1}, 0.01) == (True, "first model")


def test_clearly_worse_model_is_kept_out(registry: ModelRegistry) -> None:
    _current(registry, REQ, 0.30)
    promote, reason = promotion_decision(registry, REQ, {"valid_ndcg@10": 0.25}, 0.01)
    assert not promote and "worse" in reason and "0.2500" in reason and "0.3000" in reason
    assert promotion_decision(registry, REQ, {"valid_ndcg@10": 0.295}, 0.01)[0]  # within tolerance
    assert not promotion_decision(registry, REQ, {}, 0.01)[0]  # no score: not promoted


def test_other_data_is_not_compared(registry: ModelRegistry) -> None:
    _current(registry, REQ, 0.30)
    other = TrainRequest(dataset="synthetic", params=TrainParams(n_users=200))
    promote, reason = promotion_decision(registry, other, {"valid_ndcg@10": 0.05}, 0.01)
    assert promote and "other data" in reason
    # model knobs alone do not change the data: still compared
    knobs = TrainRequest(dataset="synthetic", params=TrainParams(n_users=100, embedding_dim=8))
    assert not promotion_decision(registry, knobs, {"valid_ndcg@10": 0.05}, 0.01)[0]


def test_shuffled_links_are_other_data(registry: ModelRegistry) -> None:
    """A control model's validation score is on its shuffled data: never compared with one on
    the data as it is (either way round). Without the option the identity stays as it was."""
    assert "shuffle_links_seed" not in data_identity(REQ)
    _current(registry, REQ, 0.30)
    control = REQ.model_copy(update={"params": REQ.params.model_copy(
        update={"shuffle_links_seed": 1})})  # fmt: skip
    promote, reason = promotion_decision(registry, control, {"valid_ndcg@10": 0.05}, 0.01)
    assert promote and "other data" in reason
    assert data_identity(control)["shuffle_links_seed"] == 1


def test_other_csv_columns_or_event_weights_are_other_data(registry: ModelRegistry) -> None:
    """The same file read with other columns or other event weights holds other interactions."""
    csv = CsvOptions(event_col="type")
    events = TrainRequest(dataset="csv", data_path="shop/events.csv", csv=csv)
    _current(registry, events, 0.30)
    assert not promotion_decision(registry, events, {"valid_ndcg@10": 0.05}, 0.01)[0]
    weighed = events.model_copy(
        update={"csv": CsvOptions(event_col="type", event_weights={"view": 1.0})}
    )
    promote, reason = promotion_decision(registry, weighed, {"valid_ndcg@10": 0.05}, 0.01)
    assert promote and "other data" in reason
    assert data_identity(weighed)["csv"] == {
        "user_col": "user_id",
        "item_col": "product_id",
        "event_col": "type",
        "event_weights": {"view": 1.0},
    }
    # A file read without its line 1 as names holds other rows (that line is one of them).
    headerless = events.model_copy(update={"csv": CsvOptions(header=False, event_col="type")})
    promote, reason = promotion_decision(registry, headerless, {"valid_ndcg@10": 0.05}, 0.01)
    assert promote and "other data" in reason
    assert data_identity(headerless)["csv"] == {
        "header": False,
        "user_col": "user_id",
        "item_col": "product_id",
        "event_col": "type",
    }


def test_the_warm_start_is_the_serving_recipe_on_the_same_data_only(
    registry: ModelRegistry,
) -> None:
    assert warm_start(registry, REQ) is None  # no version yet
    recipe = {**REQ.params.model_dump(mode="json"), "graph_kind": "item_knn"}
    registry.publish(
        {"x": b"1"},
        dataset=REQ.dataset,
        metrics={"valid_ndcg@10": 0.3},
        params={**REQ.model_dump(mode="json"), "data": data_identity(REQ), "recipe": recipe},
    )
    warm = warm_start(registry, REQ)
    assert warm is not None and warm.version == 1 and warm.recipe["graph_kind"] == "item_knn"
    other = TrainRequest(dataset="synthetic", params=TrainParams(n_users=200))
    assert warm_start(registry, other) is None  # its recipe was chosen on other data
    _current(registry, REQ, 0.3)  # a version from before recipes were recorded
    assert warm_start(registry, REQ) is None


def test_a_retrain_searches_from_the_serving_versions_recipe(
    registry: ModelRegistry, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Trained, gated and published as the worker does: the second version's search tried the
    first's recipe right after its defaults, and says so."""
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    monkeypatch.setenv("RECSYS_KEY_PREFIX", f"unit-{uuid.uuid4().hex[:8]}")  # no live catalog
    get_common_settings.cache_clear()
    first = {
        **SMALL_DATA,
        "tune_budget_seconds": 0,
        "graph_kind": "item_knn",
        "graph_neighbours": 50,
    }
    try:
        for params in (first, {**SMALL_DATA, "tune_budget_seconds": 6}):
            request = TrainRequest.model_validate({"dataset": "synthetic", "params": params})
            result = train_and_publish(
                request, registry, tmp_path, lambda stage, fraction: None, TrainerSettings()
            )
    finally:
        get_common_settings.cache_clear()
    assert result.model_version == 2
    tuning = registry.manifest(2).tuning
    assert tuning is not None
    tried = [t for t in tuning.trials if t.stage == "stage_one"][:2]
    assert [t.origin for t in tried] == ["defaults", "version 1"], tuning.note
    assert tried[1].params["graph_kind"] == "item_knn"
    assert tried[1].params["graph_neighbours"] == 50
