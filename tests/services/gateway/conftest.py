"""The gateway built in-process on the session Redis, with both stages unreachable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.app import create_app
from services.gateway.settings import get_settings
from shared.redis_conn import free_port
from shared.settings import get_common_settings


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    # A namespace of its own: the jobs and versions a test makes are the only ones it sees.
    monkeypatch.setenv("RECSYS_KEY_PREFIX", f"gateway-unit-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("GATEWAY_CANDIDATE_URL", dead)
    monkeypatch.setenv("GATEWAY_RANKER_URL", dead)
    get_settings.cache_clear()
    get_common_settings.cache_clear()
    yield create_app()
    get_settings.cache_clear()
    get_common_settings.cache_clear()


def asgi_get(app: FastAPI, path: str, **params: str) -> httpx.Response:
    """GET through the app's lifespan, in-process."""

    async def go() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.get(path, params=params or None)

    return asyncio.run(go())
