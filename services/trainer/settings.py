"""Trainer (Celery worker and beat) settings."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINER_", env_file=".env", extra="ignore")

    # Celery beat retrain period in seconds; 0 = off (the default).
    schedule_seconds: float = Field(default=0.0, ge=0)
    schedule_dataset: str = "synthetic"
    # Training params of the scheduled retrain as JSON (POST /train's `params`), e.g.
    # {"tune_budget_seconds": 600}; empty: the defaults.
    schedule_params: dict[str, Any] = Field(default_factory=dict)
    # A retrained model becomes current unless its validation NDCG@10 is worse by more than this.
    promotion_tolerance: float = Field(default=0.01, ge=0)
    # Move events from the Redis Stream into Parquet this often (s) through beat; 0 = off.
    ingest_seconds: float = Field(default=30.0, ge=0)
    # Retrain the current model's request (events included) after this many new events; 0 = off.
    retrain_after_events: int = Field(default=0, ge=0)
    # Retention: after each publish keep the newest N versions (plus the current one).
    keep_versions: int = Field(default=10, ge=1)
    # Prometheus metrics (training duration) of each worker process on this port plus the
    # process's index (0 with --concurrency 1); 0 = off.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # The pool processes (where training runs) lower their CPU priority by this much (nice):
    # on a machine the services share (`make run`), a retrain's threads would otherwise take
    # both cores from them and answers queue up for seconds. Where the trainer has its own
    # machine, it changes nothing. 0 = as started.
    nice: int = Field(default=10, ge=0, le=19)
    # The Dask scheduler for `"engine": "dask"` jobs (tcp://host:8786); jobs from the API may use
    # only this one, the local CLI any. Unset: such jobs fail, local ones are unaffected.
    dask_scheduler: str | None = None


@lru_cache
def get_settings() -> TrainerSettings:
    return TrainerSettings()
