"""Candidate service: a user's recent items -> scored candidates from the k-NN index."""

from __future__ import annotations

import logging
from functools import lru_cache, partial
from typing import Annotated, Any

import orjson
import redis
from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.candidate.catalog import (
    catalog_items,
    popular_items,
    similar_items,
    trending_items,
)
from shared.events import EventStore, UserEvents, live_history
from shared.live_catalog import CatalogMirror
from shared.ml.stage_one.serving import CandidateStage, LiveEvent
from shared.ml.stage_one.vector_index import AnnParams
from shared.ml.version_artifacts import CANDIDATE_ARTIFACTS
from shared.model_holder import Loaded
from shared.observability import NEIGHBOUR_ITEMS, NEIGHBOUR_LOOKUPS
from shared.redis_conn import async_client
from shared.schemas.serving import (
    CandidateRequest,
    CandidateResponse,
    ErrorBody,
    ItemsRequest,
    ItemsResponse,
    PopularResponse,
    SimilarRequest,
    SimilarResponse,
    TrendingRequest,
)
from shared.service import body_schema, create_model_service, json_body
from shared.settings import CommonSettings, get_common_settings

log = logging.getLogger(__name__)
# Trending products read per request: enough that filters leave k of them.
TRENDING_DEPTH = 1000


class CandidateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CANDIDATE_", env_file=".env", extra="ignore")

    port: int = 8001
    # Places in each candidate list for products nobody took yet, found by their content: the
    # live catalog's new products first, then catalog items nobody took.
    fresh_candidates: int = Field(default=5, ge=0, le=100)


@lru_cache
def get_settings() -> CandidateSettings:
    return CandidateSettings()


CandidateBody = Annotated[CandidateRequest, Depends(json_body(CandidateRequest))]
ItemsBody = Annotated[ItemsRequest, Depends(json_body(ItemsRequest))]
SimilarBody = Annotated[SimilarRequest, Depends(json_body(SimilarRequest))]
TrendingBody = Annotated[TrendingRequest, Depends(json_body(TrendingRequest))]


def ann_params(common: CommonSettings) -> AnnParams:
    return AnnParams(
        backend=common.ann_backend,
        min_items=common.ann_min_items,
        m=common.ann_m,
        ef_construction=common.ann_ef_construction,
        ef_search=common.ann_ef_search,
        num_threads=common.ann_num_threads,
    )


def load_model(artifacts: dict[str, bytes], ann: AnnParams) -> CandidateStage:
    """A version's candidate stage, its k-NN through the configured backend (HNSW built here)."""
    model = CandidateStage.from_artifacts(artifacts)
    model.index.use_backend(ann)
    return model


def create_app() -> FastAPI:
    common, settings = get_common_settings(), get_settings()
    exclude_history = common.history_event_type in common.exclude_event_types
    # Creating the client does no I/O; it connects on first use.
    client = async_client(common.redis_url)
    events = EventStore(client, common)
    mirror = CatalogMirror(client, common.key_prefix)
    app, holder = create_model_service(
        "candidate",
        common,
        CANDIDATE_ARTIFACTS,
        partial(load_model, ann=ann_params(common)),
        background=[mirror.run],
    )

    def kept(field: str) -> float:
        loaded = holder.get()
        cache = loaded.model.index.kept_neighbours if loaded is not None else None
        return float(getattr(cache, field)) if cache is not None else 0.0

    NEIGHBOUR_LOOKUPS.labels(result="hit").set_function(partial(kept, "hits"))
    NEIGHBOUR_LOOKUPS.labels(result="miss").set_function(partial(kept, "misses"))
    NEIGHBOUR_ITEMS.set_function(partial(kept, "kept"))

    def current(loaded: Loaded[CandidateStage] | None = None) -> Loaded[CandidateStage] | None:
        """The loaded version (or `loaded`), with what the live catalog says now applied."""
        loaded = loaded or holder.get()
        if loaded is not None and loaded.model.live_generation != mirror.generation:
            loaded.model.set_live(mirror.items, mirror.blocked_ids(), mirror.generation)
        return loaded

    @app.post(
        "/candidates",
        response_model=CandidateResponse,
        responses={
            409: {"description": "the pinned version cannot be loaded"},
            503: {"description": "no model yet"},
        },
        openapi_extra=body_schema(app, CandidateRequest),
    )
    async def candidates(request: CandidateBody) -> Any:
        if request.version is None:
            loaded = current()
        elif (pinned := await holder.get_pinned(request.version)) is None:
            detail = f"model version {request.version} is not available"
            return JSONResponse({"detail": detail}, status_code=409)
        else:
            loaded = current(pinned)
        if loaded is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        try:
            recent, hidden, segment, demoted = await events.of_user(request.user)
        except redis.RedisError as exc:  # the model still answers from what it was trained on
            log.warning("recent events unavailable: %s", exc)
            recent, hidden, segment, demoted = UserEvents([], [])
        live = [LiveEvent(e.product, events.weight(e), events.excludes(e)) for e in recent]
        known, items = loaded.model.candidates(
            request.user,
            request.n,
            live,
            request.filters,
            request.segment or segment,
            exclude_history=exclude_history,
            fresh=settings.fresh_candidates,
            hidden=hidden,
        )
        # A CandidateResponse, written by orjson straight from stage one's columns (a dataclass).
        answer = {"user": request.user, "version": loaded.version, "known_user": known,
                  "candidates": items, "user_age": loaded.model.user_age(request.user)}  # fmt: skip
        if taken := live_history(recent, common.history_event_type, loaded.model.store.as_of):
            answer["live"] = taken.model_dump()  # for the ranker's user features
        if demoted:
            answer["demoted"] = demoted[:1000]
        return Response(orjson.dumps(answer), media_type="application/json")

    @app.get(
        "/popular",
        response_model=PopularResponse,
        responses={503: {"description": "no model yet", "model": ErrorBody}},
    )
    async def popular(n: Annotated[int, Query(ge=1, le=5000)] = 500) -> Any:
        """The gateway's fallback list (kept for when this service is down)."""
        loaded = current()
        if loaded is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        return PopularResponse(version=loaded.version, items=popular_items(loaded.model, n))

    @app.post(
        "/trending",
        response_model=PopularResponse,
        responses={503: {"description": "no model yet", "model": ErrorBody}},
        openapi_extra=body_schema(app, TrendingRequest),
    )
    async def trending(request: TrendingBody) -> Any:
        """What users take now (recent events, decayed), then the version's popular items."""
        loaded = current()
        if loaded is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        try:
            recent = await events.trending.top(request.window, TRENDING_DEPTH)
        except redis.RedisError as exc:  # the version's popularity still answers
            log.warning("trending events unavailable: %s", exc)
            recent = []
        allowed = loaded.model.allowed(request.filters)
        items = trending_items(loaded.model, recent, request.n, allowed)
        return PopularResponse(version=loaded.version, items=items)

    @app.post(
        "/similar",
        response_model=SimilarResponse,
        responses={
            404: {"description": "the version does not know the product", "model": ErrorBody},
            503: {"description": "no model yet", "model": ErrorBody},
        },
        openapi_extra=body_schema(app, SimilarRequest),
    )
    async def similar(request: SimilarBody) -> Any:
        """Items taken together with a product, then those whose embedding is close."""
        loaded = current()
        if loaded is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        allowed = loaded.model.allowed(request.filters)
        items = similar_items(loaded.model, request.product, request.n, allowed)
        if items is None:
            detail = f"unknown product {request.product!r} (model version {loaded.version})"
            return JSONResponse({"detail": detail}, status_code=404)
        return SimilarResponse(version=loaded.version, product=request.product, items=items)

    @app.post(
        "/items",
        response_model=ItemsResponse,
        responses={503: {"description": "no model yet", "model": ErrorBody}},
        openapi_extra=body_schema(app, ItemsRequest),
    )
    async def items(request: ItemsBody) -> Any:
        """Title, price and category of products by id (the gateway's answers in candidate
        order, when the ranker failed); ids the version does not know are left out."""
        loaded = current()
        if loaded is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        return ItemsResponse(
            version=loaded.version, items=catalog_items(loaded.model, request.products)
        )

    return app
