"""The candidate service's edge: its body is read in one pydantic-core pass, bad ones are 422."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.candidate import app as candidate
from tests.conftest import asgi_post


@pytest.fixture
def app(bare_service: Callable[[ModuleType], FastAPI]) -> FastAPI:
    return bare_service(candidate)


def post(app: FastAPI, body: bytes) -> httpx.Response:
    return asgi_post(app, "/candidates", content=body, headers={"Content-Type": "application/json"})


def test_a_valid_body_before_any_model_is_503(app: FastAPI) -> None:
    r = post(app, b'{"user": "U1", "n": 50}')
    assert r.status_code == 503
    assert "no model" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"{not json", ["body"]),
        (b'{"n": 50}', ["body", "user"]),
        (b'{"user": "U1", "n": 0}', ["body", "n"]),
        (b'{"user": "U1", "n": 2001}', ["body", "n"]),
        (b'{"user": "a b"}', ["body", "user"]),
        (b'{"user": "U1", "filters": {"min_price": 5, "max_price": 1}}', ["body", "filters"]),
        (b'{"user": "U1", "surprise": 1}', ["body", "surprise"]),
    ],
)
def test_bad_bodies_are_422_with_the_place(app: FastAPI, body: bytes, loc: list[str]) -> None:
    r = post(app, body)
    assert r.status_code == 422
    errors: list[dict[str, Any]] = r.json()["detail"]
    assert errors and all(e["loc"][: len(loc)] == loc and e["msg"] for e in errors)


def test_openapi_documents_the_body(app: FastAPI) -> None:
    schema = app.openapi()
    body = schema["paths"]["/candidates"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/CandidateRequest"}
    assert "CandidateRequest" in schema["components"]["schemas"]
