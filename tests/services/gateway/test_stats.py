"""GET /stats in-process: the gateway's own metrics plus what the stages' /metrics say."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from services.gateway.settings import get_settings
from shared.schemas.serving import StatsResponse
from shared.settings import get_common_settings
from tests.services.gateway.conftest import gateway_app, gateway_client


def _candidate_metrics() -> bytes:
    registry = CollectorRegistry()
    latency = Histogram(
        "recsys_request_seconds",
        "",
        ["service", "route", "status"],
        buckets=(0.005, 0.01),
        registry=registry,
    )
    for _ in range(7):
        latency.labels("candidate", "/candidates", "200").observe(0.004)
    Gauge("recsys_model_version", "", ["service"], registry=registry).labels("candidate").set(5)
    return generate_latest(registry)


class _CandidateMetrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = _candidate_metrics() if self.path == "/metrics" else b"{}"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def candidate_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CandidateMetrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def app(redis_url: str, candidate_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    # The ranker stays unreachable (connection refused).
    yield gateway_app(
        monkeypatch,
        redis_url,
        RECSYS_KEY_PREFIX="gateway-stats-unit",
        GATEWAY_CANDIDATE_URL=candidate_url,
    )
    get_settings.cache_clear()
    get_common_settings.cache_clear()


def _calls(app: FastAPI, paths: list[str]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with gateway_client(app) as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(go())


def test_stats_of_every_service(app: FastAPI) -> None:
    # Other tests in this process count too (one registry per process): compare before/after.
    paths = ["/stats", "/recommend?user=U1", "/recommend?user=U2", "/stats"]
    first, *_, second = _calls(app, paths)
    before, after = (StatsResponse.model_validate(r.json()) for r in (first, second))

    assert [s.service for s in after.services] == ["gateway", "candidate", "ranker"]
    gateway, candidate, ranker = after.services
    assert gateway.reachable and gateway.route == "/recommend" and gateway.model_version is None
    assert gateway.requests - before.services[0].requests == 2
    assert gateway.p50_seconds is not None and gateway.p99_seconds is not None
    assert gateway.p50_seconds <= gateway.p99_seconds
    assert (candidate.reachable, candidate.requests, candidate.model_version) == (True, 7, 5)
    assert candidate.p50_seconds == pytest.approx(0.005 * 3.5 / 7)
    assert not ranker.reachable and ranker.detail is not None and "unreachable" in ranker.detail
    assert after.current is None  # nothing published under this prefix
    assert after.collected_at >= before.collected_at
