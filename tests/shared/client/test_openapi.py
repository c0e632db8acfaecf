"""The client against the gateway's OpenAPI schema, the source of truth: every public route has
a method (sync and async alike), each takes the route's parameters and body, and returns the
model the route answers with. A new route without a method fails here."""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Iterator
from dataclasses import is_dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
from pydantic import BaseModel

from services.gateway.app import create_app
from services.gateway.settings import get_settings
from shared.client import AsyncRecsysClient, RecsysClient
from shared.client.endpoints import ENDPOINTS
from shared.settings import get_common_settings

# What the framework serves about the API, not the API (and /metrics, for Prometheus).
NOT_API = {"/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}

Operation = dict[str, Any]


@pytest.fixture(scope="module")
def schema() -> Iterator[dict[str, Any]]:
    get_settings.cache_clear()
    get_common_settings.cache_clear()
    yield create_app().openapi()  # builds the routes only: no I/O before the lifespan starts
    get_settings.cache_clear()  # the next test module sets its own environment
    get_common_settings.cache_clear()


def operations(schema: dict[str, Any]) -> dict[tuple[str, str], Operation]:
    return {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        if path not in NOT_API
        for method, op in item.items()
        if method in METHODS
    }


def test_every_public_route_has_a_client_method(schema: dict[str, Any]) -> None:
    table = [(e.method, e.path) for e in ENDPOINTS]
    assert len(set(table)) == len(table)
    assert len({e.name for e in ENDPOINTS}) == len(ENDPOINTS)
    assert set(table) == set(operations(schema))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_sync_and_async_methods_are_alike(endpoint: Any) -> None:
    sync = getattr(RecsysClient, endpoint.name)
    aio = getattr(AsyncRecsysClient, endpoint.name)
    assert not inspect.iscoroutinefunction(sync)
    assert inspect.iscoroutinefunction(aio)
    assert inspect.signature(sync) == inspect.signature(aio)
    assert get_type_hints(sync) == get_type_hints(aio)


def _models_in(hint: Any) -> list[type[BaseModel]]:
    """The pydantic models a parameter annotation names (`X | None` -> [X])."""
    if get_origin(hint) in (Union, types.UnionType):
        return [m for arg in get_args(hint) for m in _models_in(arg)]
    return [hint] if isinstance(hint, type) and issubclass(hint, BaseModel) else []


def _ref_name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_each_method_takes_the_routes_parameters_and_body(
    schema: dict[str, Any], endpoint: Any
) -> None:
    op = operations(schema)[endpoint.method, endpoint.path]
    hints = get_type_hints(getattr(RecsysClient, endpoint.name))
    names = [n for n in inspect.signature(getattr(RecsysClient, endpoint.name)).parameters][1:]
    bodies = {n: m for n in names if (m := _models_in(hints[n]))}
    # a header parameter X-Foo-Bar is the method's foo_bar
    declared = {
        (p["name"].lower().removeprefix("x-").replace("-", "_") if p["in"] == "header"
         else p["name"]): p["in"]
        for p in op.get("parameters", [])
    }  # fmt: skip
    assert set(names) - set(bodies) == set(declared)
    in_path = set(re.findall(r"{(\w+)}", endpoint.path))
    assert in_path == {n for n, where in declared.items() if where == "path"}
    if "requestBody" in op:
        body = op["requestBody"]["content"]["application/json"]["schema"]
        if "anyOf" in body:  # an optional body: the model or nothing
            [body] = [b for b in body["anyOf"] if b.get("type") != "null"]
        [models] = bodies.values()
        assert [m.__name__ for m in models] == [_ref_name(body)]
        _same_fields(models[0], schema["components"]["schemas"][_ref_name(body)], "validation")
    else:
        assert bodies == {}


def _success(op: Operation) -> tuple[str, dict[str, Any]]:
    """The success answer's media type and schema."""
    [status] = [s for s in op["responses"] if s.startswith("2")]
    content: dict[str, Any] = op["responses"][status].get("content", {})
    for media in ("application/json", "application/x-ndjson"):
        if media in content:
            return media, dict(content[media].get("schema", {}))
    return "", {}


def _same_fields(
    model: type[BaseModel],
    component: dict[str, Any],
    mode: Literal["validation", "serialization"] = "serialization",
) -> None:
    """`model` is what the component describes: the same fields, the same ones required (not
    a namesake of the model the gateway declares)."""
    ours = model.model_json_schema(mode=mode)
    assert set(ours["properties"]) == set(component["properties"])
    assert set(ours.get("required", [])) == set(component.get("required", []))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_each_method_returns_the_model_the_route_answers_with(
    schema: dict[str, Any], endpoint: Any
) -> None:
    media, answer = _success(operations(schema)[endpoint.method, endpoint.path])
    returned = get_type_hints(getattr(RecsysClient, endpoint.name))["return"]
    components = schema["components"]["schemas"]
    if media == "application/x-ndjson":  # JSON lines, one model each: the client lists them
        [line] = get_args(returned)
        assert get_origin(returned) is list and line.__name__ == answer["title"]
        _same_fields(line, answer)
    elif "$ref" in answer:
        assert returned.__name__ == _ref_name(answer)
        _same_fields(returned, components[_ref_name(answer)])
    elif answer.get("type") == "array" and "$ref" in answer["items"]:
        if get_origin(returned) is list:  # a plain list of the declared model
            [item] = get_args(returned)
        else:  # a list of items with what the headers say: the items are the declared model
            assert is_dataclass(returned)
            [item] = get_args(get_type_hints(returned)["items"])
        assert item.__name__ == _ref_name(answer["items"])
        _same_fields(item, components[_ref_name(answer["items"])])
    else:  # the route declares no model (GET /readyz): the client's own, documented in docs/
        assert issubclass(returned, BaseModel)
