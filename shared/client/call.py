"""One request as both clients make it: where it goes, what it sends, how its answer is read.

The sync and the async client differ only in how they wait for the answer; everything else
(URL, admin key, timeout, status -> exception, body -> model) is here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from shared.client.errors import RecsysConnectionError, UnexpectedResponseError, error_for

T = TypeVar("T")
Params = Mapping[str, str | int | float | list[str]]

DEFAULT_BASE_URL = "http://localhost:8000"
DEFAULT_TIMEOUT_SECONDS = 10.0
API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True)
class Endpoint:
    """A public route of the gateway and the client method that calls it."""

    method: str
    path: str  # the OpenAPI path template, e.g. /items/{product}/similar
    name: str

    def path_for(self, **ids: str | int) -> str:
        """The path with `ids` in place, each URL-encoded whole: ids may hold '/', '@', spaces
        and accents, and a '/' left as is would point at another route."""
        return self.path.format(**{k: quote(str(v), safe="") for k, v in ids.items()})


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request to make and how to read its successful answer."""

    endpoint: Endpoint
    path: str
    read: Callable[[httpx.Response], T]
    params: Params | None = None
    body: Any = None  # JSON-able (a model dumped in mode="json"); None: no body
    headers: Mapping[str, str] | None = None  # beside the connection's (e.g. X-Request-ID)

    def finish(self, response: httpx.Response) -> T:
        """The answer as a model, or the exception that says why there is none."""
        if not response.is_success:
            raise error_for(response)
        return self.read(response)


def parse(adapter: TypeAdapter[T], response: httpx.Response, data: bytes | str) -> T:
    """`data` (of `response`) read with `adapter`; what does not fit raises
    UnexpectedResponseError."""
    try:
        return adapter.validate_json(data)
    except ValidationError as exc:
        raise UnexpectedResponseError(
            response.status_code,
            f"unexpected response from {response.request.url}: {exc}",
            response.request.method,
            str(response.request.url),
        ) from exc


def reader(adapter: TypeAdapter[T]) -> Callable[[httpx.Response], T]:
    """Reads a whole body with `adapter`."""
    return lambda response: parse(adapter, response, response.content)


def lines_reader(adapter: TypeAdapter[T]) -> Callable[[httpx.Response], list[T]]:
    """Reads a JSON-lines body, each line with `adapter`."""
    return lambda response: [
        parse(adapter, response, line) for line in response.content.splitlines() if line.strip()
    ]


class Connection:
    """Where the gateway is, the admin key to show it and how long to wait for it."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float | httpx.Timeout) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {API_KEY_HEADER: api_key} if api_key else {}
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)

    def request(self, call: Call[Any]) -> dict[str, Any]:
        """Keyword arguments of `httpx.Client.request` (and AsyncClient's) for `call`. The URL
        is absolute and the timeout explicit: an injected client brings its transport and pool,
        not another gateway or deadline."""
        return {
            "method": call.endpoint.method,
            "url": self.base_url + call.path,
            "params": call.params,
            "json": call.body,
            "headers": {**self.headers, **call.headers} if call.headers else self.headers,
            "timeout": self.timeout,
        }

    def unreachable(self, exc: httpx.TransportError) -> RecsysConnectionError:
        return RecsysConnectionError(self.base_url, str(exc) or type(exc).__name__)
