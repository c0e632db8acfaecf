"""Users: `PUT /users/{user}` (a profile for cold start), `GET /users/{user}`,
`GET /users/{user}/history`, `DELETE /users/{user}` (erasure: Redis now, Parquet by the
trainer, every later training without them)."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.gateway.answer_cache import AnswerCache
from services.gateway.filters import IdPath
from services.gateway.security import AdminDep
from shared.queue import ERASE_TASK, producer
from shared.schemas.serving import ErrorBody
from shared.users import UserErased, UserHistory, UserProfile, UserRecord, UserStore, user_hash

router = APIRouter()


def _store(request: Request) -> UserStore:
    store: UserStore = request.app.state.users
    return store


@router.get("/users/{user}/history", response_model=UserHistory)
async def user_history(user: IdPath, request: Request) -> Any:
    """What the service holds of a user now: profile, recent events, hidden products."""
    return await _store(request).history(user)


@router.get(
    "/users/{user}",
    response_model=UserRecord,
    responses={404: {"model": ErrorBody, "description": "no profile for this user"}},
)
async def get_user(user: IdPath, request: Request) -> Any:
    record = await _store(request).get(user)
    if record is None:
        return JSONResponse({"detail": f"no profile for user {user!r}"}, status_code=404)
    return record


@router.put("/users/{user}", response_model=UserRecord)
async def put_user(user: IdPath, profile: UserProfile, request: Request, _: AdminDep) -> Any:
    """Create or replace a user's profile: their segment answers for them while they have no
    history (cold start); the next training takes age and segment in."""
    return await _store(request).put(user, profile)


@router.delete("/users/{user}", response_model=UserErased)
async def erase_user(user: IdPath, request: Request, _: AdminDep) -> Any:
    """Forget a user: everything Redis holds of them now; the trainer removes their ingested
    events from Parquet and leaves them out of every later training."""
    recent, hidden, profile, stream, served = await _store(request).erase(user)
    cache: AnswerCache = request.app.state.answers
    cache.forget(user)  # no answer computed from what was just erased stays here
    job_id = str(uuid.uuid4())
    send = partial(producer().send_task, ERASE_TASK, args=[user_hash(user)], task_id=job_id)
    await to_thread.run_sync(send)  # kombu's publish blocks
    return UserErased(
        user=user,
        recent_events=recent,
        hidden_products=hidden,
        profile=profile,
        stream_events=stream,
        served_lists=served,
        parquet_job_id=job_id,
    )
