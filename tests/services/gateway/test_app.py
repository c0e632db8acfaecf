"""Gateway in-process (ASGI transport) with a real Redis and its stages unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import get_settings
from shared.redis_conn import free_port
from shared.settings import get_common_settings


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    monkeypatch.setenv("RECSYS_KEY_PREFIX", "gateway-unit")
    monkeypatch.setenv("GATEWAY_CANDIDATE_URL", dead)
    monkeypatch.setenv("GATEWAY_RANKER_URL", dead)
    get_settings.cache_clear()
    get_common_settings.cache_clear()
    yield create_app()
    get_settings.cache_clear()
    get_common_settings.cache_clear()


def get(app: FastAPI, path: str, **params: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.get(path, params=params)

    return asyncio.run(go())


def test_candidate_down_and_nothing_cached_answers_503_json_not_a_crash(app: FastAPI) -> None:
    # No model was ever served (no popular list cached): the one case without an answer.
    r = get(app, "/recommend", user="U1")
    assert r.status_code == 503
    assert r.json() == {"detail": "no model is served yet (candidate service unavailable)"}


def test_readiness_reports_the_missing_stage(app: FastAPI) -> None:
    assert get(app, "/healthz").json()["service"] == "gateway"
    r = get(app, "/readyz")
    assert r.status_code == 503 and "candidate" in r.json()["detail"]


def test_models_empty_registry(app: FastAPI) -> None:
    assert get(app, "/models").json() == {"current": None, "versions": []}


@pytest.mark.parametrize("job_id", ["nope", "a" * 64])
def test_unknown_job_is_404(app: FastAPI, job_id: str) -> None:
    r = get(app, f"/train/{job_id}")
    assert r.status_code == 404 and job_id in r.json()["detail"]


def test_over_long_job_id_is_422(app: FastAPI) -> None:
    assert get(app, f"/train/{'a' * 65}").status_code == 422
