"""GET /recommend: candidates -> ranker over HTTP, one model version end to end.

Within `GATEWAY_DEADLINE_SECONDS` whatever fails: ranker slow, down or refusing -> candidate
order (`X-Degraded: ranker`); candidate stage slow or down -> the cached popular list, filtered
like the request asks (`X-Degraded: candidate`). With `GATEWAY_MAX_IN_FLIGHT` requests already
inside the pipeline, a request is answered at once from the same popular list
(`X-Degraded: overload`) instead of queueing behind them. Only before any model was ever served
is there nothing to answer with (503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from services.gateway.admission import InFlightLimit
from services.gateway.answers import items_answer
from services.gateway.downstream import StageError, Stages
from services.gateway.filters import FiltersDep
from services.gateway.popular import PopularCache, pick
from services.gateway.settings import (
    AdmissionDep,
    EventsDep,
    GatewaySettings,
    PopularDep,
    SettingsDep,
    StagesDep,
)
from shared.events import EventStore
from shared.observability import DEGRADED
from shared.schemas.base import ID_MAX_CHARS, ID_PATTERN
from shared.schemas.serving import (
    CandidateResponse,
    CatalogItem,
    ErrorBody,
    ItemFilters,
    ItemsResponse,
    RankRequest,
    RankResponse,
    RecommendedItem,
)

log = logging.getLogger(__name__)
router = APIRouter()
# A shed request's client may retry this soon: overload passes in seconds, or the limit is wrong.
RETRY_AFTER_SECONDS = 1
# Titles and prices for an answer in candidate order are worth a short wait, not the deadline.
DETAILS_SECONDS = 0.5
# A popular answer leaves out what the user hid if Redis tells it this fast.
HIDDEN_SECONDS = 0.2

UserParam = Annotated[str, Query(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]

_HEADERS = {
    "X-Model-Version": {
        "description": "the model version that answered",
        "schema": {"type": "string"},
    },
    "X-Degraded": {
        "description": "present when a stage failed: `ranker` (candidate order) or `candidate` "
        "(cached popular items); `overload` (cached popular items) when too many requests were "
        "already in the pipeline",
        "schema": {"type": "string", "enum": ["ranker", "candidate", "overload"]},
    },
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
    stages: StagesDep,
    popular: PopularDep,
    settings: SettingsDep,
    admission: AdmissionDep,
    events: EventsDep,
    filters: FiltersDep,
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
    if not admission.try_enter():
        return _shed(popular, admission, k, await _without_hidden(events, user, filters))
    try:
        answer = await _two_stages(stages, popular, settings, user, k, filters, segment, explain)
        if answer is None:  # the candidate stage failed: popular items, never a hidden one
            answer = _popular_answer(popular, k, await _without_hidden(events, user, filters))
        return answer
    finally:  # every way out gives the place back: answers, stage errors, cancellation, bugs
        admission.leave()


async def _without_hidden(events: EventStore, user: str, filters: ItemFilters) -> ItemFilters:
    """`filters` excluding also what the user hid, as far as Redis tells it in time (a popular
    answer is a fallback: it does not wait for a Redis that is down)."""
    try:
        async with asyncio.timeout(HIDDEN_SECONDS):
            hidden = await events.hidden(user)
    except (redis.RedisError, TimeoutError) as exc:
        log.info("hidden products of a user unknown for a popular answer: %s", exc)
        return filters
    if not hidden:
        return filters
    return filters.model_copy(update={"exclude": [*filters.exclude, *hidden]})


async def _two_stages(
    stages: Stages,
    popular: PopularCache,
    settings: GatewaySettings,
    user: str,
    k: int,
    filters: ItemFilters,
    segment: str | None,
    explain: bool,
) -> Response | None:
    """Candidates, then the ranker over them; candidate order when the ranker fails; None when
    the candidate stage failed (the caller answers popular items)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.deadline_seconds

    def time_left() -> float:
        return min(settings.timeout_seconds, deadline - loop.time())

    try:
        stage_one = await stages.candidate.fetch(
            "POST",
            "/candidates",
            time_left(),
            json={
                "user": user,
                "n": max(settings.n_candidates, k),
                "filters": filters.model_dump(exclude_defaults=True),
                "segment": segment,
            },
        )
    except StageError as exc:
        log.warning("candidate stage failed (%s)", exc)
        return None
    # Stage one's answer goes to the ranker as it came, unparsed: the ranker validates it.
    body = RankRequest.forward(user, k, explain, stage_one)
    try:
        ranked = await stages.ranker.call("POST", "/rank", RankResponse, time_left(), content=body)
    except StageError as exc:
        return await _candidate_order(stages, popular, k, stage_one, exc, time_left)
    stages.candidate.breaker.success()  # the ranker took its answer: it was a usable one
    popular.seen_version(ranked.version)
    return items_answer(ranked.items, ranked.version, explain=explain)


async def _candidate_order(
    stages: Stages,
    popular: PopularCache,
    k: int,
    stage_one: bytes,
    exc: StageError,
    time_left: Callable[[], float],
) -> Response | None:
    """Ranker down, slow or refusing: stage one's order still answers, flagged as degraded,
    with the titles, prices and user age the candidate stage can still tell; None when stage
    one's answer is unusable too."""
    try:
        cands = stages.candidate.parse(stage_one, CandidateResponse)
    except StageError as invalid:  # the ranker refused it for that reason: popular items, then
        log.warning("candidate stage answered what the ranker refused: %s", invalid)
        return None
    log.warning("ranker failed (%s); answering in candidate order", exc)
    DEGRADED.labels("gateway", "ranker").inc()
    popular.seen_version(cands.version)
    c = cands.candidates
    products = c.products[:k]
    details = await _details(stages, products, cands.version, min(time_left(), DETAILS_SECONDS))
    items = []
    for product, score, reason in zip(products, c.scores[:k], c.reasons[:k], strict=True):
        d = details.get(product)
        items.append(
            RecommendedItem(
                product=product,
                score=score,
                price=d.price if d else None,
                age=cands.user_age,
                title=d.title if d else None,
                category=d.category if d else None,
                reason=reason,
            )
        )
    return items_answer(items, cands.version, "ranker")


async def _details(
    stages: Stages, products: list[str], version: int, timeout: float
) -> dict[str, CatalogItem]:
    """Catalog details of `products` from the candidate stage, if it still serves `version`;
    none when it cannot tell in time (the answer goes out without them)."""
    if not products:
        return {}
    try:
        found = await stages.candidate.call(
            "POST", "/items", ItemsResponse, timeout, json={"products": products}
        )
    except StageError as exc:
        log.info("no item details for a degraded answer: %s", exc)
        return {}
    if found.version != version:  # swapped in between: details of one version only
        return {}
    return {item.product: item for item in found.items}


def _popular_answer(popular: PopularCache, k: int, filters: ItemFilters) -> Response:
    """Candidate stage down, slow or refusing: the cached popular items, flagged as degraded."""
    answer = _from_popular(popular, k, filters, "candidate")
    if answer is None:
        log.warning("no popular list is cached to answer with")
        return JSONResponse(
            {"detail": "no model is served yet (candidate service unavailable)"}, status_code=503
        )
    DEGRADED.labels("gateway", "candidate").inc()
    return answer


def _shed(
    popular: PopularCache, admission: InFlightLimit, k: int, filters: ItemFilters
) -> Response:
    """The pipeline is full: the cached popular items at once, rather than a place in a queue."""
    DEGRADED.labels("gateway", "overload").inc()  # every shed request, answered or not
    if shed := admission.shed_to_report():
        log.warning(
            "overloaded: %d requests in the pipeline (limit %d), %d shed since the last report",
            admission.in_flight,
            admission.limit,
            shed,
        )
    answer = _from_popular(popular, k, filters, "overload")
    if answer is not None:
        return answer
    return JSONResponse(
        {"detail": "overloaded, and no model is served yet to answer from: retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _from_popular(
    popular: PopularCache, k: int, filters: ItemFilters, mode: str
) -> Response | None:
    """The cached popular items that pass `filters`, flagged `X-Degraded: <mode>`; None while
    no list was ever cached."""
    cached = popular.current
    if cached is None:
        return None
    items = pick(cached.items, k, filters)
    return items_answer(items, cached.version, mode)
