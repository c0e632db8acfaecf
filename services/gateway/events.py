"""POST /events: accept what a user did; the next /recommend sees it."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shared.events import EventStore
from shared.observability import ATTRIBUTED_EVENTS
from shared.schemas.serving import EventAccepted, EventIn
from shared.served import Attribution, ServedLog

log = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/events",
    status_code=202,
    response_model=EventAccepted,
    responses={503: {"description": "events cannot be stored right now; nothing was accepted"}},
)
async def post_event(event: EventIn, request: Request) -> Any:
    """Store the event with the served list it belongs to (its `request_id`, else the latest
    list that showed the product to the user within the window) and count it for that list's
    model version. A `request_id` of another user's list is 422; an unknown one falls back."""
    store: EventStore = request.app.state.events
    served: ServedLog = request.app.state.served
    try:
        attribution, wrong = await served.attribute(event.user, event.product, event.request_id)
    except redis.RedisError as exc:  # the event still counts more than its attribution
        log.warning("event not attributed, Redis unavailable: %s", exc)
        attribution, wrong = Attribution(note="attribution unavailable"), None
    if wrong is not None:
        detail = [{"loc": ["body", "request_id"], "msg": wrong, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    if event.position is not None and attribution.how == "request_id":
        attribution = attribution.model_copy(update={"position": event.position})
    try:
        entry = await store.record(event, attribution)
    except redis.RedisError as exc:
        # Refuse rather than drop: a 503 tells the client to retry, a 202 would be a lie.
        log.warning("event refused, Redis unavailable: %s", exc)
        return JSONResponse({"detail": "event store unavailable, retry later"}, status_code=503)
    if attribution.version is not None:
        ATTRIBUTED_EVENTS.labels(str(attribution.version), event.type).inc()
    try:
        await served.count(
            attribution, event.type, event.quantity, event.price, event.product, event.user
        )
    except redis.RedisError as exc:  # stored: counted again from the Parquet if need be
        log.warning("event stored but not counted online: %s", exc)
    return EventAccepted(id=entry, attribution=attribution)
