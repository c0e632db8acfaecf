"""POST /train and GET /train/{job_id}: training goes through the Celery queue."""

from __future__ import annotations

import time
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from services.trainer.celery_app import TRAIN_TASK, celery_app
from shared.schemas import JobAccepted, TrainJobStatus, TrainProgress, TrainRequest, TrainResult
from shared.settings import get_common_settings

router = APIRouter()
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")]


def _jobs_key() -> str:
    return f"{get_common_settings().key_prefix}:jobs"


def _submit(req: TrainRequest, request: Request) -> str:
    result = celery_app.send_task(TRAIN_TASK, args=[req.model_dump(mode="json")])
    # Remember our own job ids: Celery reports PENDING for ids it never saw, we answer 404.
    request.app.state.redis.zadd(_jobs_key(), {result.id: time.time()})
    return str(result.id)


@router.post("/train", status_code=202, response_model=JobAccepted)
async def train(req: TrainRequest, request: Request) -> JobAccepted:
    return JobAccepted(job_id=await to_thread.run_sync(_submit, req, request))


def job_status(job_id: str) -> TrainJobStatus:
    result = celery_app.AsyncResult(job_id)
    state, info = result.state, result.info
    if state == "SUCCESS":
        done = TrainResult.model_validate(info)
        return TrainJobStatus(
            job_id=job_id,
            state="SUCCESS",
            progress=1.0,
            stage="done",
            model_version=done.model_version,
            promoted=done.promoted,
            reason=done.reason,
        )
    if state in ("FAILURE", "REVOKED"):
        return TrainJobStatus(
            job_id=job_id, state="FAILURE", progress=1.0, error=str(info) or state
        )
    if state == "PROGRESS" and isinstance(info, dict):
        p = TrainProgress.model_validate(info)
        return TrainJobStatus(job_id=job_id, state="PROGRESS", progress=p.progress, stage=p.stage)
    if state == "STARTED":
        return TrainJobStatus(job_id=job_id, state="PROGRESS", progress=0.0, stage="started")
    return TrainJobStatus(job_id=job_id, state="PENDING", progress=0.0, stage="queued")


@router.get(
    "/train/{job_id}",
    response_model=TrainJobStatus,
    responses={404: {"description": "unknown job"}},
)
async def train_status(job_id: JobId, request: Request) -> Any:
    known = await to_thread.run_sync(request.app.state.redis.zscore, _jobs_key(), job_id)
    if known is None:
        return JSONResponse({"detail": f"unknown job {job_id!r}"}, status_code=404)
    return await to_thread.run_sync(job_status, job_id)
