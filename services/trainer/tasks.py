"""Celery tasks: thin, they deserialize, report progress and call the pure pipeline."""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import Task

from services.trainer.celery_app import celery_app
from services.trainer.erasure import erase_from_parquet
from services.trainer.ingest import events_dir, ingest, served_dir
from services.trainer.publish import train_and_publish
from services.trainer.settings import get_settings
from shared.observability import TRAINING_SECONDS
from shared.queue import ERASE_TASK, INGEST_TASK, TRAIN_TASK
from shared.redis_conn import sync_client
from shared.registry import ModelRegistry
from shared.schemas.training import TrainProgress, TrainRequest
from shared.settings import get_common_settings


@celery_app.task(name=TRAIN_TASK, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def train(self: Task, request: dict[str, Any]) -> dict[str, Any]:
    req = TrainRequest.model_validate(request)
    common = get_common_settings()

    def progress(stage: str, fraction: float) -> None:
        self.update_state(
            state="PROGRESS", meta=TrainProgress(stage=stage, progress=fraction).model_dump()
        )

    start, outcome = time.perf_counter(), "failure"
    try:
        result = train_and_publish(
            req,
            ModelRegistry.from_settings(common),
            common.data_dir,
            progress,
            get_settings(),
        )
        outcome = "success"
    finally:
        TRAINING_SECONDS.labels(req.dataset, outcome).observe(time.perf_counter() - start)
    return result.model_dump(mode="json")


@celery_app.task(name=ERASE_TASK, acks_late=True)  # type: ignore[untyped-decorator]
def erase_user(hashed: str) -> int:
    """Remove an erased user's ingested events from Parquet (by the hash of their id: the
    task's arguments stay in the result backend for days, the id must not)."""
    return erase_from_parquet(events_dir(), {hashed}) + erase_from_parquet(
        served_dir(), {hashed}, kind="served"
    )


@celery_app.task(name=INGEST_TASK, acks_late=True)  # type: ignore[untyped-decorator]
def ingest_events() -> int:
    """Drain the event stream into Parquet; past the threshold, retrain the current recipe."""
    common, settings = get_common_settings(), get_settings()
    client = sync_client(common.redis_url)
    n = ingest(client, f"{common.key_prefix}:events", events_dir())
    # The served lists beside the events (attribution, offline estimates of a new version).
    ingest(client, f"{common.key_prefix}:served", served_dir(), kind="served")
    key = f"{common.key_prefix}:events:since_train"
    if threshold_reached(client, key, n, settings.retrain_after_events):
        request = retrain_request(ModelRegistry.from_settings(common))
        celery_app.send_task(TRAIN_TASK, args=[request.as_sent()])
    client.close()
    return n


def threshold_reached(client: redis.Redis, key: str, new: int, threshold: int) -> bool:
    """Count new events; True (and the count restarts) once `threshold` is reached; 0 = never."""
    if threshold <= 0 or new <= 0:
        return False
    if int(client.incrby(key, new)) < threshold:
        return False
    client.set(key, 0)
    return True


def retrain_request(registry: ModelRegistry) -> TrainRequest:
    """The current model's own training request, with the ingested events merged in: the
    request as it was sent, so the knobs it left to the recipe search are searched again on the
    new data (versions published before the request was kept: every field, as recorded)."""
    current = registry.current_version()
    params = registry.manifest(current).params if current is not None else {}
    sent = params.get("request")
    if not isinstance(sent, dict):
        sent = {k: v for k, v in params.items() if k in TrainRequest.model_fields}
    return TrainRequest.model_validate({**sent, "include_events": True})
