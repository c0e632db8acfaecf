"""Gateway in-process (ASGI transport) with a real Redis and its stages unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.services.gateway.conftest import asgi_get, gateway_client, serving


def test_candidate_down_and_nothing_cached_answers_503_json_not_a_crash(app: FastAPI) -> None:
    # No model was ever served (no popular list cached): the one case without an answer.
    r = asgi_get(app, "/recommend", user="U1")
    assert r.status_code == 503
    assert r.json() == {"detail": "no model is served yet (candidate service unavailable)"}


def test_readiness_reports_the_missing_stage(app: FastAPI) -> None:
    assert asgi_get(app, "/healthz").json()["service"] == "gateway"
    r = asgi_get(app, "/readyz")
    assert r.status_code == 503 and "candidate" in r.json()["detail"]


def test_models_empty_registry(app: FastAPI) -> None:
    assert asgi_get(app, "/models").json() == {"current": None, "versions": []}


@pytest.mark.parametrize("job_id", ["nope", "a" * 64])
def test_unknown_job_is_404(app: FastAPI, job_id: str) -> None:
    r = asgi_get(app, f"/train/{job_id}")
    assert r.status_code == 404 and job_id in r.json()["detail"]


def test_over_long_job_id_is_422(app: FastAPI) -> None:
    assert asgi_get(app, f"/train/{'a' * 65}").status_code == 422


def test_readiness_passes_on_a_stage_serving_an_older_version_and_why(
    make_gateway: Callable[..., FastAPI],
) -> None:
    why = "model version 5 refused: model was built with a different feature set"

    def stage(name: str, body: dict[str, object]) -> FastAPI:
        app = FastAPI()
        app.get("/readyz")(lambda: {"status": "ok", "service": name, **body})
        return app

    async def go() -> httpx.Response:
        candidate = stage("candidate", {"version": 4, "refused": why})
        ranker = stage("ranker", {"version": 5, "refused": None})
        async with serving(candidate) as c_url, serving(ranker) as r_url:
            gateway = make_gateway(GATEWAY_CANDIDATE_URL=c_url, GATEWAY_RANKER_URL=r_url)
            async with gateway_client(gateway) as client:
                return await client.get("/readyz")

    r = asyncio.run(go())
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "service": "gateway",
        "versions": {"candidate": 4, "ranker": 5},
        "refused": {"candidate": why},
    }
