"""GET /recommend: one user's ranked list (`services/gateway/pipeline.py`), or the same answer
again while nothing it came from changed (`services/gateway/answer_cache.py`).

With `GATEWAY_MAX_IN_FLIGHT` requests already inside the pipeline, a request is answered at once
from the popular list (`X-Degraded: overload`) instead of queueing behind them. Only before any
model was ever served is there nothing to answer with (503).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from services.gateway.admission import InFlightLimit
from services.gateway.answer_cache import cache_key
from services.gateway.answers import items_answer, live_items, log_served
from services.gateway.deps import (
    AdmissionDep,
    AnswerCacheDep,
    ExperimentsDep,
    PipelineDep,
    ServedDep,
)
from services.gateway.explore import explore
from services.gateway.filters import FiltersDep
from services.gateway.pipeline import Answer, Pipeline
from services.gateway.rules import RulesDep
from shared.observability import DEGRADED, EXPERIMENT_ANSWERS
from shared.schemas.base import ID_MAX_CHARS, ID_PATTERN
from shared.schemas.rules import Rules
from shared.schemas.serving import ErrorBody, ItemFilters, RecommendedItem
from shared.served import ServedLog

log = logging.getLogger(__name__)
router = APIRouter()
# A shed request's client may retry this soon: overload passes in seconds, or the limit is wrong.
RETRY_AFTER_SECONDS = 1
_RNG = random.Random()  # the exploration slot's coin and draw

UserParam = Annotated[str, Query(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]

_HEADERS = {
    "X-Model-Version": {
        "description": "the model version that answered",
        "schema": {"type": "string"},
    },
    "X-Experiment-Arm": {
        "description": "`<experiment>/<arm>` when the user is in a running experiment: the "
        "answer came from that arm's model version",
        "schema": {"type": "string"},
    },
    "X-Degraded": {
        "description": "present when a stage failed: `ranker` (candidate order) or `candidate` "
        "(cached popular items); `overload` (cached popular items) when too many requests were "
        "already in the pipeline",
        "schema": {"type": "string", "enum": ["ranker", "candidate", "overload"]},
    },
    "X-Answer-Cache": {
        "description": "`hit` when the answer is the one computed for the same question before "
        "(nothing it came from changed since; `GATEWAY_ANSWER_CACHE_SECONDS`)",
        "schema": {"type": "string", "enum": ["hit"]},
    },
    "X-Request-ID": {
        "description": "the id this answer was logged under as served: the caller's own if it "
        "sent a well-formed one, else a new one; events the list brings send it as `request_id`",
        "schema": {"type": "string"},
    },
}
# The request id is read by the middleware (shared/observability.py), not by the route: declared
# here so that the schema (and the clients built from it) show it.
_REQUEST_ID_PARAM = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "your id for this answer: kept if it is 1-128 of A-Z a-z 0-9 _ . : -, else "
    "replaced by a new one (never refused); the served list is logged under it",
    "schema": {"type": "string"},
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying, when the gateway is overloaded",
        "schema": {"type": "integer"},
    },
}


@router.get(
    "/recommend",
    response_model=list[RecommendedItem],
    openapi_extra={"parameters": [_REQUEST_ID_PARAM]},
    responses={
        200: {"headers": _HEADERS},
        503: {
            "model": ErrorBody,
            "description": "no model has been served yet: nothing to answer (candidate stage "
            "down, or the gateway overloaded)",
            "headers": _RETRY_AFTER,
        },
    },
)
async def recommend(
    user: UserParam,
    pipeline: PipelineDep,
    admission: AdmissionDep,
    filters: FiltersDep,
    asked: RulesDep,
    served: ServedDep,
    experiments: ExperimentsDep,
    cache: AnswerCacheDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    segment: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="cold start: the user's segment",
        ),
    ] = None,
    explain: Annotated[bool, Query(description="add seed items and feature contributions")] = False,
) -> Any:
    started = time.perf_counter()
    rules = asked or pipeline.settings.default_rules or Rules()
    try:
        rules.check_k(k)
    except ValueError as exc:
        detail = [{"loc": ["query", "pin"], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)
    arm = experiments.arm_for(user)  # (arm, its version) in a running experiment
    version = None if arm is None else arm[1]
    fetch = rules.fetch_size(k)
    # Answers with explanations are not kept: a debugging aid, several times larger.
    kept = None  # the answer's key and stamp, where it may be kept (the key built only then)
    stamp = await cache.stamp(user, version) if cache.enabled and not explain else None
    if stamp is not None:
        kept = (cache_key(user, fetch, filters, segment, version), stamp)
    answer = None if kept is None else cache.get(*kept)
    hit = answer is not None
    if answer is None:  # not kept: through the pipeline, if there is room in it
        if not admission.try_enter():
            filters = await pipeline.without_hidden(user, filters)
            return await _shed(pipeline, admission, served, user, k, filters)
        try:
            answer = await pipeline.answer(user, fetch, filters, segment, explain, version)
        finally:  # every way out gives the place back: answers, stage errors, cancellation, bugs
            admission.leave()
        if answer is not None and kept is not None:
            cache.put(*kept, answer)
    if answer is not None and rules.active:
        answer = await pipeline.with_rules(answer, rules, k, user, explain)
    if answer is None:
        return JSONResponse(
            {"detail": "no model is served yet (candidate service unavailable)"}, status_code=503
        )
    items = live_items(answer.items, pipeline.catalog, filters)
    drawn: tuple[float, int] | None = None  # the exploration draw's propensity and place
    rate = pipeline.settings.explore_rate
    if rate > 0 and answer.degraded is None and _RNG.random() < rate:
        items, drawn = await _explore(pipeline, user, items, filters)
    answer = Answer(items, answer.version, answer.degraded)
    ms = (time.perf_counter() - started) * 1000
    await log_served(served, user, answer, None if arm is None else arm[0], ms, drawn)
    response = items_answer(answer.items, answer.version, answer.degraded, explain=explain)
    if hit:
        response.headers["X-Answer-Cache"] = "hit"
    if arm is not None:
        response.headers["X-Experiment-Arm"] = arm[0]
        EXPERIMENT_ANSWERS.labels(arm[0]).inc()
    return response


async def _explore(
    pipeline: Pipeline, user: str, items: list[RecommendedItem], filters: ItemFilters
) -> tuple[list[RecommendedItem], tuple[float, int] | None]:
    """The exploration slot (services/gateway/explore.py) drawn from the live popular list,
    never a product the user hid."""
    cached = pipeline.popular.current
    if cached is None:
        return items, None
    allowed = await pipeline.without_hidden(user, filters)
    popular = pipeline.catalog.overlay(cached.items)
    at = pipeline.settings.explore_position
    items, propensity, position = explore(items, popular, allowed, _RNG, at)
    return items, None if propensity is None or position is None else (propensity, position)


async def _shed(
    pipeline: Pipeline,
    admission: InFlightLimit,
    served: ServedLog,
    user: str,
    k: int,
    filters: ItemFilters,
) -> Response:
    """The pipeline is full: the cached popular items at once, rather than a place in a queue;
    logged like every answer (degraded "overload", in no experiment arm: no arm's version made
    it)."""
    DEGRADED.labels("gateway", "overload").inc()  # every shed request, answered or not
    if shed := admission.shed_to_report():
        log.warning(
            "overloaded: %d requests in the pipeline (limit %d), %d shed since the last report",
            admission.in_flight,
            admission.limit,
            shed,
        )
    answer = pipeline.from_popular(k, filters, "overload")
    if answer is not None:
        await log_served(served, user, answer)
        return items_answer(answer.items, answer.version, answer.degraded)
    return JSONResponse(
        {"detail": "overloaded, and no model is served yet to answer from: retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
