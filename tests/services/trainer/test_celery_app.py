"""The Celery app: JSON only (nothing from the broker is ever unpickled), reconnects by itself."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from kombu import serialization
from kombu.exceptions import ContentDisallowed

from services.trainer.celery_app import create_celery
from services.trainer.settings import TrainerSettings
from shared.queue import TRAIN_TASK
from shared.settings import CommonSettings

# kombu is untyped: its codec functions, as the worker calls them.
dumps: Any = serialization.dumps
loads: Any = serialization.loads
prepare_accept_content: Any = serialization.prepare_accept_content


class Boom:
    """What a pickle payload could run on load."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled!",))


def test_tasks_and_results_are_json_only() -> None:
    conf = create_celery(CommonSettings(redis_url="redis://127.0.0.1:1/0"), TrainerSettings()).conf
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]


@pytest.mark.parametrize("serializer", ["pickle", "yaml"])
def test_a_pickled_or_yaml_message_is_refused_not_loaded(
    serializer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = create_celery(CommonSettings(redis_url="redis://127.0.0.1:1/0"), TrainerSettings()).conf
    if serializer == "pickle":
        content_type, encoding, body = (
            "application/x-python-serialize",
            "binary",
            pickle.dumps(Boom()),
        )
    else:
        content_type, encoding, body = dumps({"a": 1}, serializer="yaml")
    # What the worker (and a result reader) does with a body: decode it, accepting only these.
    tasks = prepare_accept_content(conf.accept_content)
    results = prepare_accept_content(conf.result_accept_content)
    with pytest.raises(ContentDisallowed):
        loads(body, content_type, encoding, accept=tasks)
    with pytest.raises(ContentDisallowed):
        loads(body, content_type, encoding, accept=results)
    assert "unpickled!" not in capsys.readouterr().out
    # JSON, as the gateway sends it, is accepted.
    ctype, enc, data = dumps([{"dataset": "synthetic"}], serializer="json")
    assert loads(data, ctype, enc, accept=tasks) == [{"dataset": "synthetic"}]


def test_the_worker_reconnects_however_long_redis_is_away() -> None:
    app = create_celery(CommonSettings(redis_url="redis://127.0.0.1:1/0"), TrainerSettings())
    conf = app.conf
    assert conf.broker_connection_retry and conf.broker_connection_retry_on_startup
    assert conf.broker_connection_max_retries is None  # retry forever, never give up and exit
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.task_routes["trainer.*"]["queue"] == "trainer" and TRAIN_TASK.startswith("trainer.")


def test_the_scheduled_retrain_sends_its_dataset_and_params(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAINER_SCHEDULE_PARAMS", '{"tune_budget_seconds": 600}')
    settings = TrainerSettings(schedule_seconds=86_400, schedule_dataset="online-retail")
    beat = create_celery(CommonSettings(redis_url="redis://127.0.0.1:1/0"), settings).conf
    retrain = beat.beat_schedule["retrain"]
    assert retrain["task"] == TRAIN_TASK and retrain["schedule"] == 86_400
    assert retrain["args"] == [{"dataset": "online-retail", "params": {"tune_budget_seconds": 600}}]
