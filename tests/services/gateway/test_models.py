"""GET /models/{version}: one version's manifest as the UI's Evaluation page reads it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import get_settings
from services.stack import Stack
from shared.redis_conn import free_port
from shared.registry import ModelRegistry
from shared.schemas import EvaluationSummary, ModelDetail
from shared.settings import get_common_settings


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    # A registry of its own: the versions these tests publish are the only ones.
    monkeypatch.setenv("RECSYS_KEY_PREFIX", f"gateway-models-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("GATEWAY_CANDIDATE_URL", dead)
    monkeypatch.setenv("GATEWAY_RANKER_URL", dead)
    get_settings.cache_clear()
    get_common_settings.cache_clear()
    yield create_app()
    get_settings.cache_clear()
    get_common_settings.cache_clear()


def _get(app: FastAPI, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.get(path)

    return asyncio.run(go())


def test_unknown_version_is_404(app: FastAPI) -> None:
    r = _get(app, "/models/424242")
    assert r.status_code == 404 and r.json() == {"detail": "model version 424242 does not exist"}
    assert _get(app, "/models/0").status_code == 422


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

    r = _get(app, f"/models/{new.version}")

    assert r.status_code == 200
    detail = ModelDetail.model_validate(r.json())
    assert detail.current and detail.version == new.version
    assert detail.evaluation == evaluation
    assert detail.params == {"dataset": "synthetic", "params": {"n_users": 50}}
    assert detail.metrics == {"ndcg@10": 0.3}
    older = ModelDetail.model_validate(_get(app, f"/models/{old.version}").json())
    assert not older.current and older.evaluation is None  # versions from before it was kept


@pytest.mark.integration
def test_trained_version_has_its_evaluation(stack: Stack) -> None:
    current = httpx.get(f"{stack.gateway_url}/models", timeout=10).json()["current"]

    r = httpx.get(f"{stack.gateway_url}/models/{current}", timeout=10)

    assert r.status_code == 200
    detail = ModelDetail.model_validate(r.json())
    assert detail.current and detail.evaluation is not None
    ev = detail.evaluation
    assert set(ev.models) == {"two_stage", "popularity", "candidates_only"}
    assert ev.k == 10 and ev.n_users == detail.metrics["n_test_users"]
    for name, curve in ev.ndcg_curves.items():
        assert len(curve) == 50 and all(0 <= v <= 1 for v in curve)
        # The curve at K = 10 is the headline metric of the same model.
        assert curve[9] == pytest.approx(ev.models[name]["ndcg@10"], abs=1e-5)
    assert ev.models["two_stage"]["ndcg@10"] == pytest.approx(detail.metrics["ndcg@10"])
