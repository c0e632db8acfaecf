"""One downstream stage (candidate or ranker) as the gateway calls it: a hard deadline per call,
a circuit breaker, the request id passed on, the answer parsed into its schema, and every call
measured (`recsys_stage_seconds`) and every failure counted by cause."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from services.gateway.breaker import CircuitBreaker
from shared.observability import REQUEST_ID_HEADER, STAGE_FAILURES, STAGE_LATENCY, request_id

M = TypeVar("M", bound=BaseModel)

# Less than this left of the request's deadline: do not even start the call.
MIN_CALL_SECONDS = 0.01


class StageError(Exception):
    """The stage did not give a usable answer; `cause` says why (a metric label)."""

    def __init__(self, stage: str, cause: str, detail: str) -> None:
        super().__init__(f"{stage}: {cause}: {detail}")
        self.stage = stage
        self.cause = cause


class Stage:
    def __init__(
        self, name: str, base_url: str, http: httpx.AsyncClient, breaker: CircuitBreaker
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._http = http
        self.breaker = breaker

    async def call(
        self,
        method: str,
        path: str,
        answer: type[M],
        timeout: float,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
    ) -> M:
        """The stage's 200 answer parsed as `answer`, within `timeout` seconds; else StageError."""
        if timeout < MIN_CALL_SECONDS:
            raise self._failed("deadline", "no time left before the request's deadline", None)
        if not self.breaker.allow():
            raise self._failed("breaker_open", "circuit breaker open", None)
        headers = {REQUEST_ID_HEADER: rid} if (rid := request_id()) else {}
        if json is not None:  # orjson: httpx's json= goes through the much slower stdlib json
            content = orjson.dumps(json)
        if content is not None:
            headers["Content-Type"] = "application/json"
        start = time.perf_counter()
        try:
            # httpx's timeouts bound each phase; asyncio's bounds the whole call (a slow trickle).
            async with asyncio.timeout(timeout):
                r = await self._http.request(
                    method,
                    f"{self.base_url}{path}",
                    content=content,
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(timeout, connect=min(0.5, timeout)),
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            self.breaker.failure()
            raise self._failed("timeout", f"no answer within {timeout:.2f}s", start) from exc
        except httpx.HTTPError as exc:
            self.breaker.failure()
            raise self._failed("unreachable", str(exc) or type(exc).__name__, start) from exc
        if r.status_code != 200:
            # 5xx: the service is failing. 4xx (the ranker lacks a version) and 503 (no model
            # loaded yet) are quick, deliberate answers of a live service: not breaker failures.
            if r.status_code >= 500 and r.status_code != 503:
                self.breaker.failure()
            else:
                self.breaker.success()
            raise self._failed("status", f"answered {r.status_code}", start)
        try:
            parsed = answer.model_validate_json(r.content)
        except ValidationError as exc:
            self.breaker.failure()
            raise self._failed("invalid", f"unexpected answer: {exc}", start) from exc
        self.breaker.success()
        STAGE_LATENCY.labels("gateway", self.name, "ok").observe(time.perf_counter() - start)
        return parsed

    def _failed(self, cause: str, detail: str, start: float | None) -> StageError:
        STAGE_FAILURES.labels(self.name, cause).inc()
        if start is not None:  # a call went out: its latency counts too
            STAGE_LATENCY.labels("gateway", self.name, cause).observe(time.perf_counter() - start)
        return StageError(self.name, cause, detail)


@dataclass(frozen=True)
class Stages:
    """The gateway's two downstream stages, each with its own breaker."""

    candidate: Stage
    ranker: Stage
