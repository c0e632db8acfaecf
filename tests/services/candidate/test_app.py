"""The candidate service's edge: bodies (POST /candidates, POST /items) are read in one
pydantic-core pass, bad ones are 422."""

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


def post(app: FastAPI, body: bytes, path: str = "/candidates") -> httpx.Response:
    return asgi_post(app, path, content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body"),
    [("/candidates", b'{"user": "U1", "n": 50}'), ("/items", b'{"products": ["P1"]}')],
)
def test_a_valid_body_before_any_model_is_503(app: FastAPI, path: str, body: bytes) -> None:
    r = post(app, body, path)
    assert r.status_code == 503
    assert "no model" in r.json()["detail"]


MANY = b'{"products": ["' + b'", "'.join(b"P%d" % i for i in range(101)) + b'"]}'


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/candidates", b"{not json", ["body"]),
        ("/candidates", b'{"n": 50}', ["body", "user"]),
        ("/candidates", b'{"user": "U1", "n": 0}', ["body", "n"]),
        ("/candidates", b'{"user": "U1", "n": 2001}', ["body", "n"]),
        ("/candidates", b'{"user": "a b "}', ["body", "user"]),  # trailing space
        (
            "/candidates",
            b'{"user": "U1", "filters": {"min_price": 5, "max_price": 1}}',
            ["body", "filters"],
        ),
        ("/candidates", b'{"user": "U1", "surprise": 1}', ["body", "surprise"]),
        ("/items", b"[]", ["body"]),
        ("/items", b"{}", ["body", "products"]),
        ("/items", b'{"products": []}', ["body", "products"]),
        ("/items", b'{"products": ["a,b"]}', ["body", "products", 0]),
        ("/items", MANY, ["body", "products"]),  # more than 100
    ],
)
def test_bad_bodies_are_422_with_the_place(
    app: FastAPI, path: str, body: bytes, loc: list[Any]
) -> None:
    r = post(app, body, path)
    assert r.status_code == 422
    errors: list[dict[str, Any]] = r.json()["detail"]
    assert errors and all(e["loc"][: len(loc)] == loc and e["msg"] for e in errors)


def test_openapi_documents_the_bodies(app: FastAPI) -> None:
    schema = app.openapi()
    for path, model in [("/candidates", "CandidateRequest"), ("/items", "ItemsRequest")]:
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert model in schema["components"]["schemas"]
