"""POST /events: accept what a user did; the next /recommend sees it."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.events import EventStore
from shared.schemas.serving import EventAccepted, EventIn

log = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/events",
    status_code=202,
    response_model=EventAccepted,
    responses={503: {"description": "events cannot be stored right now; nothing was accepted"}},
)
async def post_event(event: EventIn, request: Request) -> Any:
    store: EventStore = request.app.state.events
    try:
        entry = await store.record(event)
    except redis.RedisError as exc:
        # Refuse rather than drop: a 503 tells the client to retry, a 202 would be a lie.
        log.warning("event refused, Redis unavailable: %s", exc)
        return JSONResponse({"detail": "event store unavailable, retry later"}, status_code=503)
    return EventAccepted(id=entry)
