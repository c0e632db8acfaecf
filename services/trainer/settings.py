"""Trainer (Celery worker and beat) settings."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINER_", env_file=".env", extra="ignore")

    queue: str = "trainer"
    # Celery beat retrain period in seconds; 0 = off (the default).
    schedule_seconds: float = Field(default=0.0, ge=0)
    schedule_dataset: str = "synthetic"
    # A retrained model becomes current unless its validation NDCG@10 is worse by more than this.
    promotion_tolerance: float = Field(default=0.01, ge=0)
    # Move events from the Redis Stream into Parquet this often (s) through beat; 0 = off.
    ingest_seconds: float = Field(default=30.0, ge=0)
    # Retrain the current model's recipe (events included) after this many new events; 0 = off.
    retrain_after_events: int = Field(default=0, ge=0)
    # Retention: after each publish keep the newest N versions (plus the current one).
    keep_versions: int = Field(default=10, ge=1)


@lru_cache
def get_settings() -> TrainerSettings:
    return TrainerSettings()
