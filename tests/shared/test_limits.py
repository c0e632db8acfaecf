"""BodySizeLimit: declared and streamed bodies over the limit are refused with 413 JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request

from shared.limits import BodySizeLimit
from tests.conftest import asgi_post


def _app(limit: int) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodySizeLimit, max_bytes=limit)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    @app.post("/model")
    async def model(body: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(body)}

    return app


def test_bodies_up_to_the_limit_pass() -> None:
    app = _app(100)
    assert asgi_post(app, "/echo", content=b"x" * 100).json() == {"read": 100}
    assert asgi_post(app, "/model", json={"a": 1}).json() == {"keys": 1}


def test_declared_length_over_the_limit_is_refused_unread() -> None:
    r = asgi_post(_app(100), "/echo", content=b"x" * 101)
    assert r.status_code == 413
    assert r.json() == {"detail": "request body larger than 100 bytes"}


def test_streamed_body_is_cut_off_as_it_passes_the_limit() -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(10):
            yield b"y" * 30

    for path in ("/echo", "/model"):
        r = asgi_post(_app(100), path, content=chunks())
        assert r.status_code == 413, path
        assert "larger than 100 bytes" in r.json()["detail"]


def test_malformed_content_length_is_400() -> None:
    r = asgi_post(_app(100), "/echo", content=b"abc", headers={"content-length": "3x"})
    assert r.status_code == 400 and "Content-Length" in r.json()["detail"]
