"""GET /train (the job history): in-process on an empty Redis, and on the real stack."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import get_settings
from services.stack import Stack
from shared.redis_conn import free_port
from shared.schemas import TrainJobsResponse
from shared.settings import get_common_settings
from tests.conftest import wait_for_job


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    monkeypatch.setenv("RECSYS_KEY_PREFIX", "gateway-jobs-unit")
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


def test_no_jobs_yet(app: FastAPI) -> None:
    r = _get(app, "/train")
    assert r.status_code == 200 and r.json() == {"jobs": []}


@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_limit_is_checked(app: FastAPI, limit: str) -> None:
    r = _get(app, f"/train?limit={limit}")
    assert r.status_code == 422 and "limit" in str(r.json()["detail"])


@pytest.mark.integration
def test_history_has_successes_and_failures(stack: Stack) -> None:
    url = stack.gateway_url
    # A csv job without its file fails while loading: quick, and it must show its error.
    failing = httpx.post(
        f"{url}/train", json={"dataset": "csv", "data_path": "no-such-file.csv"}, timeout=10
    ).json()["job_id"]
    assert wait_for_job(url, failing).state == "FAILURE"

    r = httpx.get(f"{url}/train", params={"limit": 100}, timeout=10)

    assert r.status_code == 200
    jobs = TrainJobsResponse.model_validate(r.json()).jobs
    assert jobs[0].job_id == failing  # newest first
    assert [j.submitted_at for j in jobs] == sorted((j.submitted_at for j in jobs), reverse=True)
    failed = jobs[0]
    assert failed.state == "FAILURE" and failed.dataset == "csv"
    assert failed.error and "no-such-file.csv" in failed.error
    done = [j for j in jobs if j.state == "SUCCESS"]
    assert done, jobs  # the stack's first model at least
    for job in [failed, *done]:
        assert job.finished_at is not None and job.finished_at >= job.submitted_at
        assert isinstance(job.submitted_at, datetime) and job.submitted_at.tzinfo is not None
    assert all(j.model_version is not None and j.dataset == "synthetic" for j in done)
    one = httpx.get(f"{url}/train", params={"limit": 1}, timeout=10).json()["jobs"]
    assert [j["job_id"] for j in one] == [failing]
