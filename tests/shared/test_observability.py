"""JSON log lines with the request id; instrument() echoes or makes X-Request-ID."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import httpx
from fastapi import FastAPI

from shared.observability import JsonFormatter, instrument, request_id


def test_json_lines_carry_the_request_id_of_the_request_being_handled() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("svc"))
    logger = logging.getLogger("test.observability")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    app = FastAPI()
    instrument(app, "svc")

    @app.get("/work")
    async def work() -> dict[str, str | None]:
        logger.info("working on %s", "it", extra={"fields": {"items": 3}})
        return {"seen": request_id()}

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/work", headers={"X-Request-ID": "req-42"})

    r = asyncio.run(go())
    assert r.json() == {"seen": "req-42"} and r.headers["X-Request-ID"] == "req-42"
    [line] = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["msg"] == "working on it" and entry["items"] == 3
    assert entry["request_id"] == "req-42" and entry["service"] == "svc"
    assert entry["level"] == "INFO" and entry["logger"] == "test.observability"
    assert request_id() is None  # outside a request


def test_exceptions_are_one_json_line() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter("svc").format(record))
    assert "ValueError: boom" in entry["exc"] and "request_id" not in entry
