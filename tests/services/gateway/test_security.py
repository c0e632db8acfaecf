"""Gateway in-process (ASGI transport, real Redis): admin key, data root, CORS, body limit,
request ids and the documented error answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.settings import GatewaySettings, get_settings
from shared.redis_conn import free_port
from shared.settings import get_common_settings
from tests.services.gateway.conftest import gateway_app, gateway_client

KEY = "s3cret-admin-key"


def _app(monkeypatch: pytest.MonkeyPatch, redis_url: str, **env: str) -> FastAPI:
    return gateway_app(monkeypatch, redis_url, RECSYS_KEY_PREFIX="gateway-security", **env)


@pytest.fixture
def app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    yield _app(monkeypatch, redis_url, GATEWAY_ADMIN_API_KEY=KEY)
    get_settings.cache_clear()
    get_common_settings.cache_clear()


@pytest.fixture
def open_app(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    yield _app(
        monkeypatch, redis_url, GATEWAY_CORS_ORIGINS="https://shop.example, https://b.example"
    )
    get_settings.cache_clear()
    get_common_settings.cache_clear()


def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with gateway_client(app) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": ""}, 401),
        ({"X-API-Key": "wrong"}, 403),
        ({"X-API-Key": KEY[:-1]}, 403),
    ],
)
@pytest.mark.parametrize("path", ["/train", "/models/1/activate"])
def test_admin_routes_refuse_without_the_right_key(
    app: FastAPI, path: str, headers: dict[str, str], status: int
) -> None:
    r = call(app, "POST", path, json={"dataset": "synthetic"}, headers=headers)
    assert r.status_code == status
    assert "X-API-Key" in r.json()["detail"]


def test_right_key_passes_the_gate(app: FastAPI) -> None:
    r = call(app, "POST", "/models/999/activate", headers={"X-API-Key": KEY})
    assert r.status_code == 404  # past the key check: the version does not exist


def test_no_key_configured_leaves_admin_routes_open(open_app: FastAPI) -> None:
    assert call(open_app, "POST", "/models/999/activate").status_code == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"dataset": "csv", "data_path": "/etc/passwd"}, ["body", "data_path"]),
        ({"dataset": "movielens-100k", "data_path": "../../../etc"}, ["body", "data_path"]),
        (
            {"dataset": "csv", "data_path": "ok.csv", "csv": {"items_path": "/etc/shadow"}},
            ["body", "csv", "items_path"],
        ),
    ],
)
def test_data_paths_outside_the_root_are_422_before_queueing(
    app: FastAPI, body: dict[str, Any], loc: list[str]
) -> None:
    r = call(app, "POST", "/train", json=body, headers={"X-API-Key": KEY})
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == loc and "outside the data folder" in error["msg"]
    assert error["type"] == "data_path_refused"


def test_nul_in_data_path_is_422(app: FastAPI) -> None:
    body = {"dataset": "csv", "data_path": "a\x00b.csv"}
    r = call(app, "POST", "/train", json=body, headers={"X-API-Key": KEY})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "data_path"]


def test_cors_is_closed_by_default(app: FastAPI) -> None:
    r = call(app, "GET", "/healthz", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in r.headers
    preflight = call(
        app,
        "OPTIONS",
        "/recommend",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_configured_origins(open_app: FastAPI) -> None:
    ok = call(open_app, "GET", "/healthz", headers={"Origin": "https://shop.example"})
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert "X-Degraded" in ok.headers["access-control-expose-headers"]
    other = call(open_app, "GET", "/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_origins_setting_reads_a_comma_separated_list() -> None:
    s = GatewaySettings(cors_origins="https://a.example, https://b.example")  # type: ignore[arg-type]
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert GatewaySettings(admin_api_key="").admin_api_key is None  # type: ignore[arg-type]


def test_body_over_the_limit_is_413_json(app: FastAPI) -> None:
    big = b'{"user": "U1", "product": "P1", "type": "view", "x": "' + b"a" * 70_000 + b'"}'
    r = call(app, "POST", "/events", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json() == {"detail": "request body larger than 65536 bytes"}


def test_request_id_is_echoed_or_made(app: FastAPI) -> None:
    r = call(app, "GET", "/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    made = call(app, "GET", "/healthz", headers={"X-Request-ID": "x" * 200}).headers
    assert made["X-Request-ID"] != "x" * 200 and len(made["X-Request-ID"]) == 32


def test_openapi_documents_the_error_answers(app: FastAPI) -> None:
    paths = call(app, "GET", "/openapi.json").json()["paths"]
    train = paths["/train"]["post"]
    assert {"401", "403", "413", "422", "503"} <= train["responses"].keys()
    assert train["security"] == [{"APIKeyHeader": []}]
    activate = paths["/models/{version}/activate"]["post"]["responses"]
    assert {"401", "403", "404", "503"} <= activate.keys()
    ref = activate["404"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorBody")
    assert "security" not in paths["/recommend"]["get"]
    assert "X-Degraded" in paths["/recommend"]["get"]["responses"]["200"]["headers"]


def test_redis_down_answers_503_json(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    try:
        for method, path, body in [
            ("GET", "/models", None),
            ("POST", "/events", {"user": "U1", "product": "P1", "type": "view"}),
            ("GET", "/train/some-job", None),
        ]:
            r = call(app, method, path, json=body)
            assert r.status_code == 503, (path, r.text)
            assert "detail" in r.json()
    finally:
        get_settings.cache_clear()
        get_common_settings.cache_clear()
