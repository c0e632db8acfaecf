"""Gateway: the public HTTP API. Fans out to candidate and ranker; trains through the queue."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.gateway import events, jobs, models, recommend
from services.gateway.settings import HttpDep, SettingsDep, get_settings
from shared.events import EventStore
from shared.observability import instrument, setup_logging
from shared.redis_conn import async_client, sync_client
from shared.registry import ModelRegistry
from shared.schemas import Health
from shared.settings import get_common_settings


def create_app() -> FastAPI:
    common, settings = get_common_settings(), get_settings()
    setup_logging(common.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One pooled client per process, with an explicit deadline for every downstream call.
        timeout = httpx.Timeout(
            settings.timeout_seconds, connect=min(0.5, settings.timeout_seconds)
        )
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
            app.state.http = http
            app.state.redis = sync_client(common.redis_url)
            app.state.registry = ModelRegistry.from_settings(common)
            events_redis = async_client(common.redis_url)
            app.state.events = EventStore(events_redis, common)
            yield
            await events_redis.aclose()
            app.state.redis.close()

    app = FastAPI(title="recsys gateway", version="0.1.0", lifespan=lifespan)
    instrument(app, "gateway")
    app.include_router(recommend.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(events.router)

    @app.get("/healthz")
    async def healthz() -> Health:
        return Health(service="gateway")

    @app.get("/readyz", responses={503: {"description": "a stage has no model yet"}})
    async def readyz(http: HttpDep, s: SettingsDep) -> Any:
        versions = {}
        for name, url in (("candidate", s.candidate_url), ("ranker", s.ranker_url)):
            try:
                r = await http.get(f"{url}/readyz")
            except httpx.HTTPError:
                return JSONResponse({"detail": f"{name} service unreachable"}, status_code=503)
            if r.status_code != 200:
                return JSONResponse({"detail": f"{name} service not ready"}, status_code=503)
            versions[name] = r.json().get("version")
        return {"status": "ok", "service": "gateway", "versions": versions}

    return app
