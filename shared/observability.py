"""Prometheus metrics and logging shared by every service."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

REQUEST_LATENCY = Histogram(
    "recsys_request_seconds",
    "HTTP request latency by service, route and status",
    ["service", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MODEL_VERSION = Gauge("recsys_model_version", "Model version being served", ["service"])
MODEL_SWAPS = Counter("recsys_model_swaps_total", "Model versions swapped in", ["service"])
MODEL_REFUSED = Counter(
    "recsys_model_refused_total", "Versions refused (load/verify failed)", ["service"]
)
DEGRADED = Counter(
    "recsys_degraded_total", "Answers served in a degraded mode", ["service", "mode"]
)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request at INFO: on the gateway's hot path that is a log line per hop.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def instrument(app: FastAPI, service: str) -> None:
    """Latency histogram per route template (not raw path: bounded label cardinality) + /metrics."""

    @app.middleware("http")
    async def _timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUEST_LATENCY.labels(service, path, str(response.status_code)).observe(
            time.perf_counter() - start
        )
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
