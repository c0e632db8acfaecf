"""The one Celery app: broker and results in Redis, JSON only, routes and schedule in one place."""

from __future__ import annotations

from celery import Celery

from services.trainer.settings import TrainerSettings, get_settings
from shared.settings import CommonSettings, get_common_settings

TRAIN_TASK = "trainer.train"
INGEST_TASK = "trainer.ingest_events"


def create_celery(common: CommonSettings, settings: TrainerSettings) -> Celery:
    app = Celery(
        "recsys",
        broker=common.redis_url,
        backend=common.redis_url,
        include=["services.trainer.tasks"],
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],  # never unpickle what came over the network
        task_routes={"trainer.*": {"queue": settings.queue}},
        task_acks_late=True,  # training is idempotent: a killed worker's job is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_expires=7 * 86_400,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    schedule: dict[str, dict[str, object]] = {}
    if settings.schedule_seconds > 0:
        schedule["retrain"] = {
            "task": TRAIN_TASK,
            "schedule": settings.schedule_seconds,
            "args": [{"dataset": settings.schedule_dataset}],
        }
    if settings.ingest_seconds > 0:
        schedule["ingest-events"] = {"task": INGEST_TASK, "schedule": settings.ingest_seconds}
    app.conf.beat_schedule = schedule
    return app


# Celery's CLI (`celery -A services.trainer.celery_app`) needs a module-level app; building it does
# no I/O (connections are opened lazily).
celery_app = create_celery(get_common_settings(), get_settings())
