"""Gateway: the public HTTP API. Fans out to candidate and ranker; trains through the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kombu.exceptions
import redis
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from services.gateway import (
    batch,
    estimate,
    events,
    experiments,
    items,
    jobs,
    models,
    online,
    recommend,
    similar,
    stats,
    trending,
    users,
)
from services.gateway.admission import InFlightLimit
from services.gateway.answer_cache import AnswerCache
from services.gateway.breaker import CircuitBreaker
from services.gateway.deps import HttpDep, SettingsDep
from services.gateway.downstream import Stage, Stages, new_session
from services.gateway.experiment_watch import ExperimentWatch
from services.gateway.pipeline import Pipeline
from services.gateway.popular import PopularCache
from services.gateway.settings import GatewaySettings, get_settings
from shared.events import EventStore
from shared.experiments import ExperimentStore
from shared.limits import BodySizeLimit
from shared.live_catalog import CatalogMirror
from shared.observability import (
    PIPELINE_IN_FLIGHT,
    REQUEST_ID_HEADER,
    instrument,
    setup_logging,
)
from shared.redis_conn import async_client, mask_url, sync_client
from shared.registry import ModelRegistry
from shared.runtime import freeze_startup_heap
from shared.schemas.serving import ErrorBody, Health
from shared.served import ServedLog
from shared.settings import get_common_settings
from shared.users import UserStore

log = logging.getLogger(__name__)


def create_app() -> FastAPI:
    common, settings = get_common_settings(), get_settings()
    setup_logging(common.log_level, "gateway")
    log.info(
        "gateway: candidate %s, ranker %s, redis %s, admin key %s, CORS origins %s",
        settings.candidate_url,
        settings.ranker_url,
        mask_url(common.redis_url),  # never the password
        "set" if settings.admin_api_key else "NOT set (admin routes are open)",
        settings.cors_origins or "none",
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        freeze_startup_heap()
        # One pooled client per process; every call to a stage carries its own deadline.
        async with new_session() as http:
            app.state.http = http
            app.state.stages = _stages(settings, http)
            app.state.popular = popular = PopularCache(
                app.state.stages.candidate,
                settings.popular_size,
                settings.popular_refresh_seconds,
                settings.timeout_seconds,
            )
            refresher = asyncio.create_task(popular.run())
            app.state.admission = admission = InFlightLimit(settings.max_in_flight)
            PIPELINE_IN_FLIGHT.set_function(lambda: admission.in_flight)
            app.state.redis = sync_client(common.redis_url)
            app.state.registry = ModelRegistry.from_settings(common)
            events_redis = async_client(common.redis_url)
            app.state.events = EventStore(events_redis, common)
            app.state.users = UserStore(events_redis, common.key_prefix)
            app.state.served = ServedLog(events_redis, common)
            app.state.catalog = catalog = CatalogMirror(events_redis, common.key_prefix)
            app.state.answers = AnswerCache(
                events_redis,
                common.key_prefix,
                catalog,
                settings.answer_cache_items,
                settings.answer_cache_seconds,
            )
            follower = asyncio.create_task(catalog.run())
            app.state.experiments = watch = ExperimentWatch(
                ExperimentStore(events_redis, common.key_prefix), settings.experiment_poll_seconds
            )
            watcher = asyncio.create_task(watch.run())
            app.state.pipeline = Pipeline(
                app.state.stages, popular, catalog, app.state.events, settings
            )
            yield
            for task in (refresher, follower, watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await events_redis.aclose()
            app.state.redis.close()

    app = FastAPI(title="recsys gateway", version="0.1.0", lifespan=lifespan)
    # Outermost last: CORS, then request ids and timing (every answer has an id), then the limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    instrument(app, "gateway")
    if settings.cors_origins:  # closed by default: browsers on other origins get no access
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "X-API-Key", REQUEST_ID_HEADER],
            expose_headers=[
                "X-Model-Version",
                "X-Degraded",
                "X-Experiment-Arm",
                "X-Answer-Cache",
                REQUEST_ID_HEADER,
            ],
        )

    @app.exception_handler(redis.RedisError)
    @app.exception_handler(kombu.exceptions.OperationalError)
    async def _store_down(request: Request, exc: Exception) -> JSONResponse:
        # Registry, jobs and broker live in Redis: while it is down, say so (and retry later).
        log.warning("%s %s: Redis unavailable: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "Redis is unavailable, retry later"}, status_code=503)

    app.include_router(recommend.router)
    app.include_router(batch.router)
    app.include_router(trending.router)
    app.include_router(similar.router)  # before items: /items/{product}/similar is not an id
    app.include_router(items.router)
    app.include_router(users.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(estimate.router)
    app.include_router(events.router)
    app.include_router(stats.router)
    app.include_router(online.router)
    app.include_router(experiments.router)

    @app.get("/healthz")
    async def healthz() -> Health:
        return Health(service="gateway")

    @app.get("/readyz", responses={503: {"description": "a stage has no model yet"}})
    async def readyz(http: HttpDep, s: SettingsDep) -> Any:
        versions, refused = {}, {}
        timeout = aiohttp.ClientTimeout(total=s.timeout_seconds, connect=0.5)
        for name, url in (("candidate", s.candidate_url), ("ranker", s.ranker_url)):
            try:
                async with http.get(f"{url}/readyz", timeout=timeout) as r:
                    ready = r.status == 200
                    body = await r.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return JSONResponse({"detail": f"{name} service unreachable"}, status_code=503)
            body = body if isinstance(body, dict) else {}
            if not ready:
                why = body.get("detail")
                detail = f"{name} service not ready" + (f": {why}" if why else "")
                return JSONResponse({"detail": detail}, status_code=503)
            versions[name] = body.get("version")
            if body.get("refused"):  # serving an older version than the registry's current
                refused[name] = body["refused"]
        return {"status": "ok", "service": "gateway", "versions": versions, "refused": refused}

    _document_errors(app)
    return app


def _stages(settings: GatewaySettings, http: aiohttp.ClientSession) -> Stages:
    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(name, settings.breaker_failures, settings.breaker_reset_seconds)

    return Stages(
        candidate=Stage("candidate", settings.candidate_url, http, breaker("candidate")),
        ranker=Stage("ranker", settings.ranker_url, http, breaker("ranker")),
    )


def _document_errors(app: FastAPI) -> None:
    """Put the answers every operation may give in the OpenAPI schema (clients and schemathesis
    check against it): 400/413 where there is a body, 401/403 where the admin key applies, 503 while
    a backing service is down, and the JSON error body on every documented error status."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                extra = {}
                if "requestBody" in operation:
                    extra["400"] = "request body unreadable (bytes that are not UTF-8 JSON)"
                    extra["413"] = "request body too large"
                if any("APIKeyHeader" in s for s in operation.get("security", [])):
                    extra["401"] = "X-API-Key header missing"
                    extra["403"] = "X-API-Key header wrong"
                if path != "/healthz":
                    extra["503"] = "a backing service (a stage, Redis) is unavailable"
                responses = operation.setdefault("responses", {})
                for status, description in extra.items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if status.startswith(("4", "5")) and "content" not in response:
                        response["content"] = body
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
