"""Choosing where the ranker is fitted, and which Dask scheduler a job may use."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.trainer.publish import train_and_publish
from services.trainer.settings import TrainerSettings
from shared.ml.stage_two.model import fit_ranker
from shared.registry import ModelRegistry
from shared.schemas.training import TrainRequest
from shared.training.engines import EngineError, ranker_fit, resolve_engine
from shared.training.params import TrainParams

CONFIGURED = "tcp://dask-scheduler:8786"


def _request(**params: object) -> TrainRequest:
    return TrainRequest(params=TrainParams.model_validate(params))


def test_local_engine_is_lightgbm_in_process() -> None:
    local = ranker_fit(TrainParams(ranker_prior_weight=0.5))
    assert isinstance(local, partial) and local.func is fit_ranker
    assert local.keywords == {
        "prior_weight": 0.5,
        "num_leaves": 15,
    }  # the job's knobs reach the fit
    assert ranker_fit(TrainParams(engine="dask", scheduler=CONFIGURED)) is not fit_ranker
    with pytest.raises(EngineError, match="scheduler"):
        ranker_fit(TrainParams(engine="dask"))


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:8786", "tls://dask.internal:8786", "dask-scheduler:8786", "tcp://[::1]:1"],
)
def test_scheduler_addresses_accepted(address: str) -> None:
    assert TrainParams(engine="dask", scheduler=address).scheduler == address


@pytest.mark.parametrize(
    "address",
    [
        "http://scheduler:8786",  # not a Dask protocol
        "tcp://scheduler",  # no port
        "tcp://scheduler:0",
        "tcp://scheduler:65536",
        "tcp://sched uler:8786",
        "tcp://-scheduler:8786",
        "tcp://scheduler:8786/path",
        "tcp://x:1\nforged log line",
    ],
)
def test_scheduler_addresses_refused(address: str) -> None:
    with pytest.raises(ValidationError, match="scheduler"):
        TrainParams(engine="dask", scheduler=address)


def test_scheduler_only_with_the_dask_engine() -> None:
    with pytest.raises(ValidationError, match="engine='dask'"):
        TrainParams(scheduler=CONFIGURED)
    with pytest.raises(ValidationError):
        TrainParams.model_validate({"engine": "spark"})


def test_resolve_fills_in_the_configured_scheduler() -> None:
    local = _request()
    assert resolve_engine(local, None, any_scheduler=False) is local
    resolved = resolve_engine(_request(engine="dask"), CONFIGURED, any_scheduler=False)
    assert resolved.params.scheduler == CONFIGURED
    assert resolved.params.engine == "dask"
    # the knobs the request left unset stay unset: the recipe search still chooses them
    assert resolved.params.model_fields_set == {"engine", "scheduler"}
    same = resolve_engine(
        _request(engine="dask", scheduler=CONFIGURED), CONFIGURED, any_scheduler=False
    )
    assert same.params.scheduler == CONFIGURED


def test_api_jobs_may_use_only_the_configured_scheduler() -> None:
    other = _request(engine="dask", scheduler="tcp://elsewhere:8786")
    with pytest.raises(EngineError, match="TRAINER_DASK_SCHEDULER"):
        resolve_engine(other, CONFIGURED, any_scheduler=False)
    with pytest.raises(EngineError, match="TRAINER_DASK_SCHEDULER"):
        resolve_engine(other, None, any_scheduler=False)
    # The local CLI names its own cluster.
    assert resolve_engine(other, CONFIGURED, any_scheduler=True).params.scheduler == (
        "tcp://elsewhere:8786"
    )
    with pytest.raises(EngineError, match="needs a scheduler"):
        resolve_engine(_request(engine="dask"), None, any_scheduler=True)


def test_a_queued_job_naming_another_scheduler_fails_before_training(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """The Celery task's path (allow_outside=False): refused, nothing published."""
    request = _request(engine="dask", scheduler="tcp://attacker.example:8786")
    stages: list[str] = []
    with pytest.raises(EngineError):
        train_and_publish(
            request,
            registry,
            tmp_path,
            lambda stage, fraction: stages.append(stage),
            TrainerSettings(dask_scheduler=CONFIGURED),
        )
    assert stages == []
    assert registry.current_version() is None and registry.versions() == []
