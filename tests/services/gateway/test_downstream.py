"""Stage: a hard deadline per call, failures by cause, the breaker fed, the request id passed."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.gateway.breaker import CircuitBreaker
from services.gateway.downstream import Stage, StageError
from shared.observability import _REQUEST_ID


def state(breaker: CircuitBreaker) -> str:
    """The state, read afresh (not narrowed by earlier asserts)."""
    return breaker.state


class Answer(BaseModel):
    value: int
    request_id: str | None = None


def _service() -> FastAPI:
    """A small real ASGI service standing in for a stage, with each way a stage can fail."""
    app = FastAPI()

    @app.get("/ok")
    async def ok(request: Request) -> dict[str, object]:
        return {"value": 1, "request_id": request.headers.get("X-Request-ID")}

    @app.get("/slow")
    async def slow() -> dict[str, int]:
        await asyncio.sleep(2)
        return {"value": 2}

    @app.get("/status/{code}")
    async def status(code: int) -> JSONResponse:
        return JSONResponse({"detail": "no"}, status_code=code)

    @app.get("/garbage")
    async def garbage() -> dict[str, str]:
        return {"unexpected": "shape"}

    return app


def _stage(http: httpx.AsyncClient, failures: int = 2) -> Stage:
    return Stage("test", "http://stage", http, CircuitBreaker("test-downstream", failures, 60))


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_service()))


async def _cause(stage: Stage, path: str, timeout: float = 1.0) -> str:
    with pytest.raises(StageError) as info:
        await stage.call("GET", path, Answer, timeout)
    return info.value.cause


def test_answer_is_parsed_and_the_request_id_passed_on() -> None:
    async def go() -> Answer:
        token = _REQUEST_ID.set("rid-7")
        try:
            async with _client() as http:
                return await _stage(http).call("GET", "/ok", Answer, 1.0)
        finally:
            _REQUEST_ID.reset(token)

    assert asyncio.run(go()) == Answer(value=1, request_id="rid-7")


def test_a_slow_stage_is_cut_at_the_timeout() -> None:
    async def go() -> tuple[str, float]:
        async with _client() as http:
            start = time.monotonic()
            cause = await _cause(_stage(http), "/slow", timeout=0.2)
            return cause, time.monotonic() - start

    cause, took = asyncio.run(go())
    assert cause == "timeout" and took < 0.5


def test_failures_by_cause_and_which_ones_open_the_breaker() -> None:
    async def go() -> list[str]:
        async with _client() as http:
            return await scenario(_stage(http, failures=2))

    async def scenario(stage: Stage) -> list[str]:
        causes = [
            await _cause(stage, "/status/409"),  # alive, refusing: not a breaker failure
            await _cause(stage, "/status/503"),  # alive, not ready: not a breaker failure
            await _cause(stage, "/garbage"),  # broken answer: counts
        ]
        assert state(stage.breaker) == "closed"
        causes.append(await _cause(stage, "/status/500"))  # second failure in a row: opens
        assert state(stage.breaker) == "open"
        causes.append(await _cause(stage, "/ok"))  # not even tried
        causes.append(await _cause(stage, "/ok", timeout=0.001))
        return causes

    causes = asyncio.run(go())
    assert causes == ["status", "status", "invalid", "status", "breaker_open", "deadline"]
