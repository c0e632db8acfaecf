"""The retrain after events on real processes: events through the gateway, the ingest task on the
Celery worker, past `TRAINER_RETRAIN_AFTER_EVENTS` a training job that replays the current
version's request as it was sent, with the events merged in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.launcher.stack import Stack
from shared.client import RecsysClient
from shared.datasets.synthetic import END
from shared.queue import INGEST_TASK
from shared.schemas.serving import EventIn
from shared.schemas.training import TrainRequest
from tests.conftest import SMALL_TRAIN, running_stack, wait_for_job

pytestmark = pytest.mark.integration
DB = 12
THRESHOLD = 20


@pytest.fixture(scope="module")
def estack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "RECSYS_WORK_DIR": str(tmp_path_factory.mktemp("retrain-work")),
        "TRAINER_RETRAIN_AFTER_EVENTS": str(THRESHOLD),
    }
    with running_stack(redis_url, DB, tmp_path_factory.mktemp("estack"), env=env) as s:
        yield s


def _ingest_on_the_worker(stack: Stack) -> None:
    """The ingest task sent by name, as beat sends it, and run by the stack's worker."""
    app = "services.trainer.celery_app:celery_app"
    run = subprocess.run(
        [sys.executable, "-m", "celery", "-A", app, "call", INGEST_TASK],
        env={**os.environ, **stack.env(), **stack.extra_env},
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr


def _versions(api: RecsysClient) -> set[int]:
    return {v.version for v in api.models().versions}


def test_events_past_the_threshold_retrain_the_request_as_it_was_sent(estack: Stack) -> None:
    with RecsysClient(estack.gateway_url) as api:
        before = _versions(api)
        assert before
        # on the synthetic data's own timeline (its last days), as a shop's events are on its own
        for i in range(THRESHOLD + 5):
            at = END - timedelta(days=3) + timedelta(minutes=i)
            api.send_event(
                EventIn(user=f"U{1 + i % 7}", product=f"P{1 + i}", type="purchase", ts=at)
            )
        _ingest_on_the_worker(estack)
        deadline = time.monotonic() + 240
        while not (new := _versions(api) - before):
            assert time.monotonic() < deadline, "no new version within 240 s of the ingest"
            estack.check_alive()
            time.sleep(0.5)
        params = api.model(max(new)).params
    # the request as the first training sent it (its knobs fixed, the rest left to the search),
    # with the events merged in: not every default written out, which would fix every knob
    assert params["request"] == {**SMALL_TRAIN, "include_events": True}
    assert params["include_events"] is True


def test_events_on_another_timeline_fail_the_job_saying_so(estack: Stack) -> None:
    """Today's events of users the demo data does not know, merged into that data (it ends
    2024-06-30): the recent windows hold only them, training cannot fit its ranker, and the
    job's error says the events are on another timeline; the served version stays."""
    with RecsysClient(estack.gateway_url) as api:
        serving = api.models().current
        for i in range(5):
            api.send_event(EventIn(user=f"today-{i}", product=f"P{1 + i}", type="purchase"))
        _ingest_on_the_worker(estack)  # 5 events: under the threshold, no retrain of its own
        job = api.train(TrainRequest.model_validate({**SMALL_TRAIN, "include_events": True}))
        status = wait_for_job(estack.gateway_url, job.job_id)
        assert status.state == "FAILURE", status
        assert status.error and "on another timeline" in status.error, status.error
        assert "days after the dataset's last interaction (2024-06-30)" in status.error
        assert status.error.startswith("no user took a candidate item")  # what failed, first
        assert api.models().current == serving
