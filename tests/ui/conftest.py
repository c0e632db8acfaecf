"""Fixtures shared by the UI tests (AppTest runs the pages in this process)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ui.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    # get_settings() is cached per process and AppTest runs the page in this process: without a
    # clear, the first test's UI_GATEWAY_URL would leak into the next ones.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def closed_port_url() -> str:
    # Bind to get a free port, then close it: nothing listens there, connects are refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A tiny HTTP server on a free port for banner states a real stack cannot easily show."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


Reply = tuple[int, object] | tuple[int, object, dict[str, str]]
Route = Callable[["FakeGateway", bytes], Reply]


@dataclass
class FakeGateway:
    """A scripted gateway: `routes[(method, path)]` answers; every request is recorded.

    The path includes the query string, as the client sent it; a route for the bare path
    answers any query. `default` answers what no route matches (else 404)."""

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    default: Route | None = None
    requests: list[tuple[str, str, object]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # for routes that change what others say

    def handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                gateway.requests.append((self.command, self.path, body))
                bare = self.path.split("?", 1)[0]
                route = gateway.routes.get((self.command, self.path)) or gateway.routes.get(
                    (self.command, bare)
                )
                route = route or gateway.default
                reply: Reply = (404, {"detail": f"no route {self.path}"})
                if route is not None:
                    reply = route(gateway, raw)
                code, payload = reply[0], reply[1]
                headers = reply[2] if len(reply) == 3 else {}
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:  # keep output clean
                pass

        return Handler

    def paths(self, method: str) -> list[str]:
        return [path for m, path, _ in self.requests if m == method]


@contextlib.contextmanager
def fake_gateway(gateway: FakeGateway) -> Iterator[str]:
    with serve_http(gateway.handler()) as url:
        yield url


def reply(body: object, code: int = 200, headers: dict[str, str] | None = None) -> Route:
    """A route that always gives the same answer."""
    return lambda gateway, raw: (code, body, headers or {})


_CARD_TITLE = re.compile(r"^\*\*(\d+)\. .+\*\* · `([^`]+)`")


def card_products(at: AppTest) -> list[str]:
    """The product ids of the recommendation cards, in their rank order."""
    found = [m for md in at.markdown if (m := _CARD_TITLE.match(str(md.value)))]
    ranked = sorted((int(m.group(1)), m.group(2)) for m in found)
    assert [rank for rank, _ in ranked] == list(range(1, len(ranked) + 1)), ranked
    return [product for _, product in ranked]


# A recipe search as training reports it (shared/schemas/models.py TuningReport): stage one's
# trials, then the ranker's; one pruned, one failed.
TUNING: dict[str, Any] = {
    "budget_seconds": 60.0,
    "spent_seconds": 41.5,
    "phase_seconds": {"validation splits": 4.2, "stage-one search": 29.8, "ranker search": 7.5},
    "validation": "the last 14 days of the training part",
    "n_splits": 2,
    "trials": [
        {
            "number": 0,
            "stage": "stage_one",
            "params": {"graph_lowrank": 32, "graph_kind": "ease"},
            "score": 0.2811,
            "state": "complete",
            "seconds": 3.24,
            "origin": "defaults",
        },
        {
            "number": 1,
            "stage": "stage_one",
            "params": {"graph_lowrank": 64, "graph_kind": "item_knn"},
            "score": 0.295,
            "state": "complete",
            "seconds": 2.9,
            "origin": "version 1",  # the serving version's recipe, tried after the defaults
        },
        {
            "number": 2,
            "stage": "stage_one",
            "params": {"graph_lowrank": 0, "graph_kind": "ease"},
            "score": None,
            "state": "pruned",
            "seconds": 1.05,
        },
        {
            "number": 3,
            "stage": "ranker",
            "params": {"ranker_leaves": 31, "ranker_prior_weight": 1.5},
            "score": 0.3102,
            "state": "complete",
            "seconds": 8.4,
        },
        {
            "number": 4,
            "stage": "ranker",
            "params": {"ranker_leaves": 7, "ranker_prior_weight": 0.5},
            "score": None,
            "state": "failed",
            "seconds": 0.3,
        },
    ],
    "chosen": {"graph_kind": "item_knn", "graph_lowrank": 64, "ranker_leaves": 31},
    "validation_ndcg": {
        "stage_one": 0.295,
        "two_stage": 0.3102,
        "popularity": 0.1203,
        "ease": 0.279,
    },
    "decision": "two_stage",
    "reason": "the ranker beats stage one alone on validation (0.3102 vs 0.2950)",
    "note": None,
}


def model_detail(version: int, current: bool, tuning: dict[str, Any] | None) -> dict[str, Any]:
    """GET /models/{version}'s answer (ModelDetail) for a synthetic-data version."""
    return {
        "version": version,
        "created_at": f"2024-05-0{version}T10:00:00Z",
        "dataset": "synthetic",
        "metrics": {"ndcg@10": 0.2 + version / 100},
        "current": current,
        "params": {},
        "evaluation": None,
        "tuning": tuning,
    }
