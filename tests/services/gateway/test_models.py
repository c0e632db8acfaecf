"""GET /models/{version}: one version's manifest as the UI's Evaluation page reads it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.launcher.stack import Stack
from shared.registry import ModelRegistry
from shared.schemas.models import EvaluationSummary, ModelDetail
from shared.settings import get_common_settings
from tests.services.gateway.conftest import asgi_get


def test_unknown_version_is_404(app: FastAPI) -> None:
    r = asgi_get(app, "/models/424242")
    assert r.status_code == 404 and r.json() == {"detail": "model version 424242 does not exist"}
    assert asgi_get(app, "/models/0").status_code == 422


def test_detail_carries_params_and_evaluation(app: FastAPI) -> None:
    evaluation = EvaluationSummary(
        protocol="temporal",
        k=10,
        n_users=12,
        models={"two_stage": {"ndcg@10": 0.3}, "popularity": {"ndcg@10": 0.1}},
        ndcg_curves={"two_stage": [0.1, 0.2], "popularity": [0.05, 0.1]},
    )
    registry = ModelRegistry.from_settings(get_common_settings())
    old, _ = registry.publish({"x": b"1"}, dataset="synthetic", params={}, metrics={})
    new, _ = registry.publish(
        {"x": b"2"},
        dataset="synthetic",
        params={"dataset": "synthetic", "params": {"n_users": 50}},
        metrics={"ndcg@10": 0.3},
        evaluation=evaluation,
    )

    r = asgi_get(app, f"/models/{new.version}")

    assert r.status_code == 200
    detail = ModelDetail.model_validate(r.json())
    assert detail.current and detail.version == new.version
    assert detail.evaluation == evaluation
    assert detail.params == {"dataset": "synthetic", "params": {"n_users": 50}}
    assert detail.metrics == {"ndcg@10": 0.3}
    older = ModelDetail.model_validate(asgi_get(app, f"/models/{old.version}").json())
    assert not older.current and older.evaluation is None  # versions from before it was kept


@pytest.mark.integration
def test_trained_version_has_its_evaluation(stack: Stack) -> None:
    current = httpx.get(f"{stack.gateway_url}/models", timeout=10).json()["current"]

    r = httpx.get(f"{stack.gateway_url}/models/{current}", timeout=10)

    assert r.status_code == 200
    detail = ModelDetail.model_validate(r.json())
    assert detail.current and detail.evaluation is not None
    ev = detail.evaluation
    assert set(ev.models) == {"two_stage", "popularity", "ease", "candidates_only"}
    assert ev.k == 10 and ev.n_users == detail.metrics["n_test_users"]
    for name, curve in ev.ndcg_curves.items():
        assert len(curve) == 50 and all(0 <= v <= 1 for v in curve)
        # The curve at K = 10 is the headline metric of the same model.
        assert curve[9] == pytest.approx(ev.models[name]["ndcg@10"], abs=1e-5)
    assert ev.models["two_stage"]["ndcg@10"] == pytest.approx(detail.metrics["ndcg@10"])
