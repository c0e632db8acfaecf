"""Gateway in-process (ASGI transport) with a real Redis and its stages unreachable."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.services.gateway.conftest import asgi_get


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
