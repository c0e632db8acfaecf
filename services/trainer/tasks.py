"""Celery tasks: thin, they deserialize, report progress and call the pure pipeline."""

from __future__ import annotations

from typing import Any

from celery import Task

from services.trainer.celery_app import TRAIN_TASK, celery_app
from services.trainer.publish import train_and_publish
from services.trainer.settings import get_settings
from shared.registry import ModelRegistry
from shared.schemas import TrainProgress, TrainRequest
from shared.settings import get_common_settings


@celery_app.task(name=TRAIN_TASK, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def train(self: Task, request: dict[str, Any]) -> dict[str, Any]:
    req = TrainRequest.model_validate(request)
    common = get_common_settings()

    def progress(stage: str, fraction: float) -> None:
        self.update_state(
            state="PROGRESS", meta=TrainProgress(stage=stage, progress=fraction).model_dump()
        )

    result = train_and_publish(
        req,
        ModelRegistry.from_settings(common),
        common.data_dir,
        progress,
        get_settings(),
    )
    return result.model_dump(mode="json")
