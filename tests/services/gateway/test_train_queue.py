"""POST /train coalesces identical requests and bounds the queue: on a real Redis broker that no
worker reads, so every job stays queued (PENDING) until the test says it finished."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from services.gateway import jobs
from shared.queue import QueueSettings, producer
from shared.schemas.training import TrainJobStatus, TrainRequest
from tests.services.gateway.conftest import gateway_client

# The producer's broker connection (kombu's pool, used from the request's worker thread) is
# dropped with the app each test builds; in a service it lives as long as the process.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

A = {"dataset": "synthetic", "params": {"n_users": 101}}
B = {"dataset": "synthetic", "params": {"n_users": 102}}
C = {"dataset": "synthetic", "params": {"n_users": 103}}


def _fresh_producer() -> None:
    app = producer()  # its connections closed before it is dropped: broker and results
    app.backend.client.connection_pool.disconnect()
    app.close()
    producer.cache_clear()


@pytest.fixture
def app(make_gateway: Callable[..., FastAPI]) -> Iterator[FastAPI]:
    made = make_gateway(GATEWAY_MAX_ACTIVE_TRAININGS="2")
    _fresh_producer()  # built again on this test's Redis and key prefix
    yield made
    _fresh_producer()


def post_all(app: FastAPI, *bodies: dict[str, Any]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with gateway_client(app) as client:
            return [await client.post("/train", json=body) for body in bodies]

    return asyncio.run(go())


def finish(monkeypatch: pytest.MonkeyPatch, job_id: str) -> None:
    """Celery reports `job_id` finished (as the worker's result would)."""
    real = jobs.job_status

    def status(asked: str) -> TrainJobStatus:
        if asked != job_id:
            return real(asked)
        return TrainJobStatus(job_id=asked, state="SUCCESS", progress=1.0, model_version=7)

    monkeypatch.setattr(jobs, "job_status", status)


def test_an_identical_request_joins_the_queued_job(app: FastAPI) -> None:
    first, again, other = post_all(app, A, A, B)
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json() == {"job_id": first.json()["job_id"], "joined": True}
    assert first.json()["joined"] is False and other.json()["job_id"] != first.json()["job_id"]


def test_past_the_limit_the_answer_is_429_with_retry_after(app: FastAPI) -> None:
    a, b, c, a_again = post_all(app, A, B, C, A)
    assert a.status_code == b.status_code == 202
    assert c.status_code == 429 and c.headers["Retry-After"] == "30"
    assert "GATEWAY_MAX_ACTIVE_TRAININGS" in c.json()["detail"]
    assert a_again.status_code == 202 and a_again.json()["joined"] is True  # joining is free


def test_a_finished_job_is_not_joined_and_frees_its_place(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = post_all(app, A, B)
    finish(monkeypatch, a.json()["job_id"])
    a_again, c = post_all(app, A, C)
    assert a_again.status_code == 202 and a_again.json()["joined"] is False
    assert a_again.json()["job_id"] != a.json()["job_id"]
    assert c.status_code == 429  # B and the new A are queued


def queued_body(redis_url: str, job_id: str) -> Any:
    """The first argument of the queued task `job_id`, as the worker will read it."""
    client = redis.Redis.from_url(redis_url)
    try:
        for raw in client.lrange(QueueSettings().queue, 0, -1):
            message = json.loads(raw)
            if message["headers"]["id"] == job_id:
                args, _, _ = json.loads(base64.b64decode(message["body"]))
                return args[0]
    finally:
        client.close()
    raise AssertionError(f"job {job_id} is not in the queue")


def test_the_job_carries_only_the_fields_the_request_set(app: FastAPI, redis_url: str) -> None:
    """The worker searches only the knobs a request leaves unset, so the gateway must not write
    out the defaults: with them, every knob would read as fixed and the search would try one
    recipe over and over."""
    (a,) = post_all(app, A)
    body = queued_body(redis_url, a.json()["job_id"])
    assert body == A
    assert TrainRequest.model_validate(body).params.model_fields_set == {"n_users"}
