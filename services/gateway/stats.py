"""GET /stats: what each service serves and how fast, from its own Prometheus metrics.

The UI talks to the gateway only, so the gateway reads its own registry and scrapes the two
stages' /metrics. Counters are since each process started; a client that wants rates takes two
snapshots (`shared.stats.window`), so nothing here keeps state between requests.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import redis
from anyio import to_thread
from fastapi import APIRouter
from prometheus_client import REGISTRY, generate_latest

from services.gateway.deps import HttpDep, RegistryDep, SettingsDep
from shared.registry import ModelRegistry
from shared.schemas.serving import ServiceStats, StatsResponse
from shared.stats import service_stats, unreachable

log = logging.getLogger(__name__)
router = APIRouter()


async def _scrape(
    http: aiohttp.ClientSession, service: str, url: str, timeout: float
) -> ServiceStats:
    try:
        limit = aiohttp.ClientTimeout(total=timeout, connect=min(0.5, timeout))
        async with http.get(f"{url}/metrics", timeout=limit) as r:
            status, text = r.status, await r.text(errors="replace")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return unreachable(service, f"{url} is unreachable ({type(exc).__name__})")
    if status != 200:
        return unreachable(service, f"{url}/metrics answered HTTP {status}")
    try:
        return service_stats(service, text)
    except ValueError as exc:  # not Prometheus text: a proxy's page, another program
        return unreachable(service, f"{url}/metrics is not Prometheus text: {exc}")


def _current(registry: ModelRegistry) -> int | None:
    try:
        return registry.current_version()
    except redis.RedisError as exc:  # the stats still say what the services serve
        log.warning("registry unavailable for /stats: %s", exc)
        return None


@router.get("/stats", response_model=StatsResponse)
async def stats(http: HttpDep, settings: SettingsDep, registry: RegistryDep) -> StatsResponse:
    own = service_stats("gateway", generate_latest(REGISTRY).decode())
    candidate, ranker = await asyncio.gather(
        _scrape(http, "candidate", settings.candidate_url, settings.timeout_seconds),
        _scrape(http, "ranker", settings.ranker_url, settings.timeout_seconds),
    )
    current = await to_thread.run_sync(_current, registry)
    return StatsResponse(
        collected_at=time.time(), current=current, services=[own, candidate, ranker]
    )
