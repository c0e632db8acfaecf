"""The training queue as both sides see it: task names, and the Celery configuration they share.

Producers (the gateway) send tasks by name through `producer()`, a Celery app that knows no tasks
and imports nothing of the trainer; the worker (`services.trainer.celery_app`) builds its app on
the same configuration and registers the tasks under these names.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import CommonSettings, get_common_settings

TRAIN_TASK = "trainer.train"
INGEST_TASK = "trainer.ingest_events"
ERASE_TASK = "trainer.erase_user"


class QueueSettings(BaseSettings):
    """The queue training tasks are routed to (worker and producers must agree)."""

    model_config = SettingsConfigDict(env_prefix="TRAINER_", env_file=".env", extra="ignore")

    queue: str = "trainer"


def celery_config(queue: str) -> dict[str, Any]:
    """What producers and the worker share: serializers, routes, results, reconnection."""
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],  # never unpickle what came over the network
        "result_accept_content": ["json"],
        "task_routes": {"trainer.*": {"queue": queue}},
        "task_track_started": True,
        # Results also keep the task's arguments: the gateway's job history shows the dataset.
        "result_extended": True,
        "result_expires": 7 * 86_400,
        "broker_connection_retry_on_startup": True,
        # Redis restarts: clients reconnect by themselves, however long Redis is away (kombu
        # retries every 2, 4, ... up to 30 s); idle connections are pinged before reuse.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": {"health_check_interval": 10, "socket_keepalive": True},
        "redis_backend_health_check_interval": 10,
        "redis_socket_keepalive": True,
        "redis_retry_on_timeout": True,
    }


def make_celery(common: CommonSettings, queue: str, include: list[str] | None = None) -> Celery:
    app = Celery("recsys", broker=common.redis_url, backend=common.redis_url, include=include)
    app.conf.update(celery_config(queue))
    return app


@lru_cache
def producer() -> Celery:
    """The producer's app: sends tasks by name, reads their results. Built on first use (no I/O:
    connections open lazily)."""
    return make_celery(get_common_settings(), QueueSettings().queue)
