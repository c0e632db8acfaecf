"""The gateway built in-process on the session Redis (its stages unreachable unless a test
says where they are), and real servers standing in for its stages."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import get_settings
from shared.redis_conn import free_port
from shared.settings import get_common_settings


def gateway_app(monkeypatch: pytest.MonkeyPatch, redis_url: str, **env: str) -> FastAPI:
    """A new gateway app; `env` overrides its settings (e.g. GATEWAY_CANDIDATE_URL). Whoever
    calls it clears the settings caches afterwards (the fixtures below do)."""
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    # A namespace of its own: the jobs and versions a test makes are the only ones it sees.
    monkeypatch.setenv("RECSYS_KEY_PREFIX", f"gateway-unit-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("GATEWAY_CANDIDATE_URL", dead)
    monkeypatch.setenv("GATEWAY_RANKER_URL", dead)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_common_settings.cache_clear()
    return create_app()


@pytest.fixture
def make_gateway(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., FastAPI]]:
    """`gateway_app` on the session Redis, as often as a test needs; caches cleared after."""

    def make(**env: str) -> FastAPI:
        return gateway_app(monkeypatch, redis_url, **env)

    yield make
    get_settings.cache_clear()
    get_common_settings.cache_clear()


@pytest.fixture
def app(make_gateway: Callable[..., FastAPI]) -> FastAPI:
    return make_gateway()


@contextlib.asynccontextmanager
async def gateway_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app in-process, inside its lifespan (requests may run concurrently)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


def asgi_get(app: FastAPI, path: str, **params: str) -> httpx.Response:
    """GET through the app's lifespan, in-process."""

    async def go() -> httpx.Response:
        async with gateway_client(app) as client:
            return await client.get(path, params=params or None)

    return asyncio.run(go())


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """`app` on a real socket in this event loop (the gateway's client speaks real HTTP only);
    yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
