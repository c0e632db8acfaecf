"""GET /train (the job history): in-process on an empty Redis, and on the real stack."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.jobs import _dataset, job_status
from services.launcher.stack import Stack
from shared.queue import producer
from shared.schemas.training import TrainJobsResponse, TrainResult
from tests.conftest import wait_for_job
from tests.services.gateway.conftest import asgi_get


def test_no_jobs_yet(app: FastAPI) -> None:
    r = asgi_get(app, "/train")
    assert r.status_code == 200 and r.json() == {"jobs": []}


@pytest.mark.parametrize("limit", ["0", "101", "many"])
def test_limit_is_checked(app: FastAPI, limit: str) -> None:
    r = asgi_get(app, f"/train?limit={limit}")
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


def test_a_job_whose_request_named_no_dataset_shows_the_one_it_trains() -> None:
    """A job carries only the fields its request set: `POST /train {}` trains the default
    dataset, and the history says which."""
    assert _dataset({"args": [{}]}) == "synthetic"
    assert _dataset({"args": [{"dataset": "csv"}]}) == "csv"
    assert _dataset({"args": None}) is None


def test_a_job_ending_while_its_status_is_read_is_reported_consistently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stored result changes from PROGRESS to SUCCESS between two reads of it: the status
    comes from one read, never a PROGRESS state with the finished result as its progress."""
    finished = TrainResult(model_version=3, promoted=True, reason="first model", metrics={})
    metas = iter(
        [
            {"status": "PROGRESS", "result": {"stage": "ranker", "progress": 0.5}},
            {"status": "SUCCESS", "result": finished.model_dump(mode="json")},
            {"status": "SUCCESS", "result": finished.model_dump(mode="json")},
        ]
    )
    monkeypatch.setattr(producer().backend, "get_task_meta", lambda *a, **k: next(metas))
    first = job_status("job-1")
    assert (first.state, first.stage, first.progress) == ("PROGRESS", "ranker", 0.5)
    second = job_status("job-1")
    assert (second.state, second.model_version, second.promoted) == ("SUCCESS", 3, True)
