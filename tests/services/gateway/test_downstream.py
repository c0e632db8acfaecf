"""Stage: a hard deadline per call, failures by cause, the breaker fed, the request id passed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.gateway.breaker import CircuitBreaker
from services.gateway.downstream import Stage, StageError, new_session
from shared.observability import _REQUEST_ID
from shared.redis_conn import free_port
from tests.services.gateway.conftest import serving


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

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(body, media_type=request.headers.get("Content-Type", "text/plain"))

    return app


@contextlib.asynccontextmanager
async def _serving() -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The stand-in service on a real socket, and the gateway's kind of client session."""
    async with serving(_service()) as url, new_session() as http:
        yield url, http


def _stage(url: str, http: aiohttp.ClientSession, failures: int = 2) -> Stage:
    return Stage("test", url, http, CircuitBreaker("test-downstream", failures, 60))


async def _cause(stage: Stage, path: str, timeout: float = 1.0) -> str:
    with pytest.raises(StageError) as info:
        await stage.call("GET", path, Answer, timeout)
    return info.value.cause


def test_answer_is_parsed_and_the_request_id_passed_on() -> None:
    async def go() -> Answer:
        token = _REQUEST_ID.set("rid-7")
        try:
            async with _serving() as (url, http):
                return await _stage(url, http).call("GET", "/ok", Answer, 1.0)
        finally:
            _REQUEST_ID.reset(token)

    assert asyncio.run(go()) == Answer(value=1, request_id="rid-7")


def test_a_slow_stage_is_cut_at_the_timeout() -> None:
    async def go() -> tuple[str, float]:
        async with _serving() as (url, http):
            start = time.monotonic()
            cause = await _cause(_stage(url, http), "/slow", timeout=0.2)
            return cause, time.monotonic() - start

    cause, took = asyncio.run(go())
    assert cause == "timeout" and took < 0.5


def test_failures_by_cause_and_which_ones_open_the_breaker() -> None:
    async def go() -> list[str]:
        async with _serving() as (url, http):
            return await scenario(_stage(url, http, failures=2))

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


def test_fetch_returns_the_body_as_sent_and_leaves_the_verdict_to_parse() -> None:
    async def go() -> tuple[bytes, list[str]]:
        async with _serving() as (url, http):
            stage = _stage(url, http, failures=2)
            raw = await stage.fetch("POST", "/echo", 1.0, content=b'{"value": 3}')
            verdicts = []
            for body in (b'{"value": "x"}', b"not json"):  # two unusable answers in a row
                with pytest.raises(StageError) as info:
                    stage.parse(body, Answer)
                verdicts.append(info.value.cause)
            verdicts.append(state(stage.breaker))
            return raw, verdicts

    raw, verdicts = asyncio.run(go())
    assert raw == b'{"value": 3}'
    assert verdicts == ["invalid", "invalid", "open"]


def test_an_unreachable_stage_is_a_failure_by_cause() -> None:
    async def go() -> str:
        async with new_session() as http:
            return await _cause(_stage(f"http://127.0.0.1:{free_port()}", http), "/ok")

    assert asyncio.run(go()) == "unreachable"
