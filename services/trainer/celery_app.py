"""The one Celery app: broker and results in Redis, JSON only, routes and schedule in one place."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, signals
from prometheus_client import start_http_server

from services.trainer.settings import TrainerSettings, get_settings
from shared.observability import setup_logging
from shared.queue import INGEST_TASK, TRAIN_TASK, QueueSettings, make_celery
from shared.redis_conn import mask_url
from shared.settings import CommonSettings, get_common_settings


def create_celery(common: CommonSettings, settings: TrainerSettings) -> Celery:
    """The worker's (and beat's) app: the shared queue configuration, the tasks, the schedule."""
    app = make_celery(common, QueueSettings().queue, include=["services.trainer.tasks"])
    app.conf.update(
        task_acks_late=True,  # training is idempotent: a killed worker's job is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
    )
    schedule: dict[str, dict[str, object]] = {}
    if settings.schedule_seconds > 0:
        schedule["retrain"] = {
            "task": TRAIN_TASK,
            "schedule": settings.schedule_seconds,
            "args": [{"dataset": settings.schedule_dataset, "params": settings.schedule_params}],
        }
    if settings.ingest_seconds > 0:
        schedule["ingest-events"] = {"task": INGEST_TASK, "schedule": settings.ingest_seconds}
    app.conf.beat_schedule = schedule
    return app


# Celery's CLI (`celery -A services.trainer.celery_app`) needs a module-level app; building it does
# no I/O (connections are opened lazily).
celery_app = create_celery(get_common_settings(), get_settings())
log = logging.getLogger(__name__)


@signals.setup_logging.connect  # type: ignore[untyped-decorator]
def _json_logs(loglevel: str | int | None = None, **_: Any) -> None:
    """Worker and beat log JSON lines like the services (Celery's own setup is skipped)."""
    setup_logging(loglevel or get_common_settings().log_level, "trainer")
    log.info("trainer: broker and results at %s", mask_url(get_common_settings().redis_url))


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
def _yield_cpu_to_serving(**_: Any) -> None:
    """Training is batch work: the services' answers come first (TrainerSettings.nice)."""
    if (by := get_settings().nice) > 0:
        try:
            os.nice(by)
        except OSError as exc:  # not allowed here: train at the priority it has
            log.warning("trainer: could not lower the CPU priority by %d (%s)", by, exc)


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
def _metrics_endpoint(**_: Any) -> None:
    """Each pool process (where tasks run) serves its Prometheus metrics, if configured."""
    base = get_settings().metrics_port
    if base <= 0:
        return
    from billiard.process import current_process

    port = base + int(getattr(current_process(), "index", 0) or 0)
    try:
        start_http_server(port, addr="0.0.0.0")  # scraped from other containers too
    except OSError as exc:
        log.warning("trainer metrics: port %d unavailable (%s)", port, exc)
    else:
        log.info("trainer metrics on port %d", port)
