"""Prometheus metrics, JSON logs and request ids shared by every service."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
# mode: which stage the answer did without ("ranker": candidate order; "candidate": popular), or
# "overload": the gateway's pipeline was full, the request was shed (answered from popular).
DEGRADED = Counter(
    "recsys_degraded_total", "Answers served in a degraded mode", ["service", "mode"]
)
# The gateway's calls to its stages, per stage and outcome (ok, timeout, unreachable, status,
# invalid, breaker_open, deadline): latency, and why a call failed.
STAGE_LATENCY = Histogram(
    "recsys_stage_seconds",
    "Latency of one downstream call (stage) of a request",
    ["service", "stage", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
STAGE_FAILURES = Counter(
    "recsys_stage_failures_total", "Downstream calls that failed, by cause", ["stage", "cause"]
)
BREAKER_STATE = Gauge(
    "recsys_breaker_state",
    "Circuit breaker per downstream: 0 closed, 1 half-open, 2 open",
    ["stage"],
)
# Read when scraped (set_function): nothing to update on the request path.
PIPELINE_IN_FLIGHT = Gauge(
    "recsys_gateway_pipeline_in_flight",
    "Requests inside the gateway's candidate -> ranker pipeline (GATEWAY_MAX_IN_FLIGHT bounds it)",
)
# The ranker's current version: its LightGBM members, and how many predict with native code
# (compiled in the background after a load; until then, and where that fails, LightGBM does).
RANKER_MEMBERS = Gauge("recsys_ranker_members", "LightGBM rankers averaged in the current version")
RANKER_NATIVE_MEMBERS = Gauge(
    "recsys_ranker_native_members", "Members of the current ranker predicting with native code"
)
# Stage one's seeds in the current version (catalogs past the neighbour table): how many found
# their neighbours kept (`NeighbourCache`), how many were searched; and how many items are kept.
NEIGHBOUR_LOOKUPS = Gauge(
    "recsys_candidate_neighbour_lookups",
    "Seeds of the current version answered from kept neighbours (hit) or searched (miss)",
    ["result"],
)
NEIGHBOUR_ITEMS = Gauge(
    "recsys_candidate_neighbour_items", "Items whose neighbours the current version keeps"
)
BREAKER_OPENED = Counter(
    "recsys_breaker_opened_total", "Times a downstream's circuit breaker opened", ["stage"]
)
ANSWER_CACHE = Counter(
    "recsys_answer_cache_total",
    "Gateway answers looked up in its answer cache: hit (served again) or miss",
    ["result"],
)
# The online loop (per model version; arms of an experiment are versions too).
SERVED_LISTS = Counter("recsys_served_lists_total", "Answers logged as served", ["version"])
ATTRIBUTED_EVENTS = Counter(
    "recsys_attributed_events_total",
    "Events attributed to a served list, by its version and the event's type",
    ["version", "type"],
)
EXPERIMENT_ANSWERS = Counter(
    "recsys_experiment_answers_total", "Answers served in an experiment, by arm", ["arm"]
)
# cause: "guardrail", "stopped" (by hand) or "promoted"
EXPERIMENT_ENDS = Counter(
    "recsys_experiment_ends_total",
    "Experiments ended, by experiment and cause",
    ["experiment", "cause"],
)
TRAINING_SECONDS = Histogram(
    "recsys_training_seconds",
    "Duration of training jobs by dataset and outcome",
    ["dataset", "outcome"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)

_access = logging.getLogger("recsys.access")
_QUIET = {"/metrics", "/healthz"}  # polled by monitors: not worth a line each

# The id of the request being handled: in every log line, and passed on to the next service.
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Accepted from callers as is: printable, bounded (it goes into logs and headers).
_VALID_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    return _REQUEST_ID.get()


@contextmanager
def request_scope(rid: str) -> Iterator[None]:
    """Code run inside sees `rid` as the current request's id (log lines, served-list records)."""
    token = _REQUEST_ID.set(rid)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, service, request id."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
        }
        rid = _REQUEST_ID.get()
        if rid is not None:
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)  # log.info(..., extra={"fields": {...}})
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(level: str | int, service: str = "recsys") -> None:
    """JSON lines on stderr for the root logger and uvicorn's loggers."""
    root = logging.getLogger()
    # Idempotent (tests build apps in-process, more than once); other handlers are left alone.
    root.handlers[:] = [h for h in root.handlers if not isinstance(h.formatter, JsonFormatter)]
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our own access line (RequestObserver) carries route, status, latency and request id:
    # uvicorn's would be a second line per request.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every request at INFO: on the gateway's hot path that is a log line per hop.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def instrument(app: FastAPI, service: str) -> None:
    """Request ids, a latency histogram per route template (bounded label cardinality), /metrics.

    A caller's `X-Request-ID` (if well-formed) is kept, else one is made; it is in every log line
    written while handling the request and echoed in the response header.
    """

    # A pure ASGI middleware: Starlette's BaseHTTPMiddleware (`@app.middleware`) runs each
    # request through an extra task and memory streams, measurable on a three-hop request path.
    app.add_middleware(RequestObserver, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestObserver:
    """Request id in (kept if well-formed, else made), echoed out; latency histogram per route
    template; one JSON access line per request (but for /metrics and /healthz)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        rid = given if given is not None and _VALID_ID.match(given) else uuid.uuid4().hex
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, rid)
            await send(message)

        with request_scope(rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                path = getattr(scope.get("route"), "path", "unmatched")
                elapsed = time.perf_counter() - start
                REQUEST_LATENCY.labels(self.service, path, str(status)).observe(elapsed)
                if path not in _QUIET:
                    method = scope["method"]
                    fields = {"request_id": rid, "method": method, "route": path,
                              "status": status, "ms": round(elapsed * 1000, 2)}  # fmt: skip
                    _access.info("%s %s %d", method, path, status, extra={"fields": fields})
