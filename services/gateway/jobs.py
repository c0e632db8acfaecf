"""POST /train and GET /train/{job_id}: training goes through the Celery queue."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import orjson
import redis
from anyio import to_thread
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from services.gateway.deps import SettingsDep
from services.gateway.security import AdminDep, ConfinedTrainRequest
from shared.queue import TRAIN_TASK, producer
from shared.schemas.training import (
    JobAccepted,
    TrainJobRecord,
    TrainJobsResponse,
    TrainJobStatus,
    TrainProgress,
    TrainRequest,
    TrainResult,
)
from shared.settings import get_common_settings

router = APIRouter()
RETRY_AFTER_SECONDS = 30
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")]


def _jobs_key() -> str:
    return f"{get_common_settings().key_prefix}:jobs"


# A job being queued or run: an identical request joins it instead of queueing another.
ACTIVE = ("PENDING", "PROGRESS")
# How long the pointer from a request to its job lives (a job still queued after that is
# counted again); the job history keeps the job itself as long as Celery keeps its result.
SAME_REQUEST_TTL = 86_400
# Jobs looked at when counting the queue (the newest submitted).
QUEUE_LOOKUP = 100


def _same_request_key(body: dict[str, Any]) -> str:
    raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return f"{get_common_settings().key_prefix}:train:same:{hashlib.sha256(raw).hexdigest()}"


def _active_jobs(client: redis.Redis) -> int:
    since = time.time() - SAME_REQUEST_TTL
    ids = cast(list[bytes], client.zrevrangebyscore(_jobs_key(), "+inf", since, 0, QUEUE_LOOKUP))
    return sum(1 for raw in ids if job_status(raw.decode()).state in ACTIVE)


def _joined(client: redis.Redis, key: str) -> str | None:
    """The id of the queued or running job of the same request, if there is one."""
    raw = cast(bytes | None, client.get(key))
    if raw is None:
        return None
    job_id = raw.decode()
    if job_status(job_id).state in ACTIVE:
        return job_id
    client.delete(key)  # that one finished: a new job may take its place
    return None


def _submit(req: TrainRequest, request: Request, limit: int) -> JobAccepted:
    client: redis.Redis = request.app.state.redis
    body = req.as_sent()
    key = _same_request_key(body)
    if (same := _joined(client, key)) is not None:
        return JobAccepted(job_id=same, joined=True)
    if limit and (active := _active_jobs(client)) >= limit:
        raise HTTPException(
            429,
            f"{active} training jobs are queued or running (GATEWAY_MAX_ACTIVE_TRAININGS = "
            f"{limit}); try again when one has finished",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    job_id = str(uuid.uuid4())
    if not client.set(key, job_id, nx=True, ex=SAME_REQUEST_TTL):
        # An identical request got here first, between our look and now: join it.
        if (same := _joined(client, key)) is not None:
            return JobAccepted(job_id=same, joined=True)
        client.set(key, job_id, ex=SAME_REQUEST_TTL)
    # Remember our own job ids: Celery reports PENDING for ids it never saw, we answer 404.
    client.zadd(_jobs_key(), {job_id: time.time()})
    producer().send_task(TRAIN_TASK, args=[body], task_id=job_id)
    return JobAccepted(job_id=job_id)


@router.post(
    "/train",
    status_code=202,
    response_model=JobAccepted,
    responses={429: {"description": "too many training jobs queued or running"}},
)
async def train(
    req: ConfinedTrainRequest, request: Request, settings: SettingsDep, _: AdminDep
) -> JobAccepted:
    limit = settings.max_active_trainings
    return await to_thread.run_sync(_submit, req, request, limit)


def job_status(job_id: str) -> TrainJobStatus:
    # One read of the stored result: AsyncResult's `state` and `info` are two reads, and a job
    # ending between them gave a PROGRESS state with the finished result as its info (a 500).
    meta = producer().backend.get_task_meta(job_id)
    state, info = meta.get("status"), meta.get("result")
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


def _result_ttl_seconds() -> float:
    expires = producer().conf.result_expires
    return expires.total_seconds() if isinstance(expires, timedelta) else float(expires or 0)


def _dataset(meta: dict[str, Any]) -> str | None:
    # result_extended: the result keeps the task's arguments, here [TrainRequest as JSON], with
    # the fields the request set only: one without a dataset trains the default one.
    args = meta.get("args")
    if isinstance(args, list | tuple) and args and isinstance(args[0], dict):
        dataset = args[0].get("dataset", TrainRequest.model_fields["dataset"].default)
        return dataset if isinstance(dataset, str) else None
    return None


def _finished_at(meta: dict[str, Any]) -> datetime | None:
    done = meta.get("date_done")
    if isinstance(done, str):
        done = datetime.fromisoformat(done)
    if not isinstance(done, datetime):
        return None
    return done if done.tzinfo is not None else done.replace(tzinfo=UTC)


def job_history(client: redis.Redis, limit: int) -> TrainJobsResponse:
    """The newest `limit` jobs submitted here whose Celery result has not expired yet (older
    ones would read as PENDING forever), newest first."""
    ttl = _result_ttl_seconds()
    oldest = time.time() - ttl if ttl > 0 else "-inf"
    entries = cast(
        list[tuple[bytes, float]],
        client.zrevrangebyscore(_jobs_key(), "+inf", oldest, start=0, num=limit, withscores=True),
    )
    jobs = []
    for raw_id, submitted in entries:
        job_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        status = job_status(job_id)
        meta = producer().backend.get_task_meta(job_id)
        done = status.state in ("SUCCESS", "FAILURE")
        jobs.append(
            TrainJobRecord(
                **status.model_dump(),
                submitted_at=datetime.fromtimestamp(submitted, UTC),
                finished_at=_finished_at(meta) if done else None,
                dataset=_dataset(meta),
            )
        )
    return TrainJobsResponse(jobs=jobs)


@router.get("/train", response_model=TrainJobsResponse)
async def train_history(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="newest jobs to list")] = 20,
) -> TrainJobsResponse:
    return await to_thread.run_sync(job_history, request.app.state.redis, limit)
