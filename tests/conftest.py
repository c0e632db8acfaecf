"""Real servers for the tests: a Redis per session, and the whole stack as separate processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from services.launcher.stack import Stack, StackSettings
from shared.artifacts import RedisArtifactStore
from shared.client import ApiError, RecsysClient
from shared.redis_conn import free_port, start_redis_server
from shared.registry import ModelRegistry
from shared.schemas.training import TrainJobStatus, TrainRequest
from shared.settings import get_common_settings

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("RECSYS_DATA_DIR", ROOT.parent / "shared" / "data"))
# Small enough to train in seconds, big enough for the planted structure to show.
# No recipe search (tune_budget_seconds 0): the same recipe every time, trained in seconds.
SMALL_DATA = {"n_users": 300, "n_products": 150, "n_days": 90}
SMALL_TRAIN = {"dataset": "synthetic", "params": {**SMALL_DATA, "tune_budget_seconds": 0}}
SMALL_TRAIN_REQUEST = TrainRequest.model_validate(SMALL_TRAIN)  # the same, for the client


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start_redis_server(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def registry(redis_client: redis.Redis) -> ModelRegistry:
    prefix = f"test-{uuid.uuid4().hex[:8]}"  # each test its own namespace on the shared server
    return ModelRegistry(redis_client, RedisArtifactStore(redis_client, prefix), prefix)


def wait_for_job(gateway_url: str, job_id: str, timeout: float = 300) -> TrainJobStatus:
    deadline = time.monotonic() + timeout
    with RecsysClient(gateway_url) as client:
        while time.monotonic() < deadline:
            status = client.train_status(job_id)
            if status.state in ("SUCCESS", "FAILURE"):
                return status
            time.sleep(0.3)
    raise TimeoutError(f"job {job_id} did not finish in {timeout}s")


def wait_for_version(gateway_url: str, version: int, timeout: float = 30, user: str = "U1") -> None:
    deadline = time.monotonic() + timeout
    with RecsysClient(gateway_url) as client:
        while time.monotonic() < deadline:
            try:
                if client.recommend(user, k=1).version == version:
                    return
            except ApiError:  # an answer that is no list (no model yet): ask again
                pass
            time.sleep(0.1)
    raise TimeoutError(f"version {version} not served within {timeout}s")


@contextlib.contextmanager
def running_stack(
    redis_url: str,
    db: int,
    workdir: Path,
    train: bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Redis (database `db` of the test server), a Celery worker and the three services as real
    processes on free ports; with `train`, a first model trained through the queue. `env` adds
    settings (with GATEWAY_ADMIN_API_KEY, the first training sends that key)."""
    settings = StackSettings.on_free_ports()
    extra = {
        "RECSYS_REDIS_URL": f"{redis_url.rsplit('/', 1)[0]}/{db}",
        "RECSYS_MODEL_CHECK_SECONDS": "1",
        "RECSYS_DATA_DIR": str(DATA_DIR),
        # Admin routes open unless a test asks for a key (a developer's own key stays out).
        "GATEWAY_ADMIN_API_KEY": "",
        **(env or {}),
    }
    s = Stack(settings, workdir, with_ui=False, with_beat=False, extra_env=extra)
    key = extra.get("GATEWAY_ADMIN_API_KEY")
    try:
        s.start()
        if train:
            with RecsysClient(s.gateway_url, api_key=key or None) as client:
                job = client.train(SMALL_TRAIN_REQUEST)
            status = wait_for_job(s.gateway_url, job.job_id)
            assert status.state == "SUCCESS", status.error
            assert status.model_version is not None
            wait_for_version(s.gateway_url, status.model_version)
        yield s
    except BaseException:
        _dump_logs(workdir)
        raise
    finally:
        s.stop()


@pytest.fixture(scope="session")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared stack most integration tests use (database 1), with a synthetic model."""
    with running_stack(redis_url, 1, tmp_path_factory.mktemp("stack")) as s:
        yield s


def _dump_logs(workdir: Path) -> None:
    for log in sorted((workdir / "logs").glob("*.log")):
        print(f"===== {log.name} =====\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def api(stack: Stack) -> Iterator[RecsysClient]:
    """The typed client (shared/client) of the shared stack's gateway, as a shop would call it."""
    with RecsysClient(stack.gateway_url) as client:
        yield client


@pytest.fixture(scope="session")
def live_gateway_url(stack: Stack) -> str:
    return stack.gateway_url


def pids(stack: Stack) -> dict[str, int]:
    return {name: p.pid for name, p in stack.procs.items() if isinstance(p, subprocess.Popen)}


def asgi_post(app: FastAPI, path: str, **kwargs: Any) -> httpx.Response:
    """POST to `app` in-process (httpx's ASGI transport: no lifespan, so no model loads)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def bare_service(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[ModuleType], FastAPI]]:
    """`bare_service(services.ranker.app)`: that service's app on a registry nobody published
    to (a fresh key prefix), its cached settings cleared before and after."""
    made: list[ModuleType] = []

    def clear() -> None:
        for service in made:
            service.get_settings.cache_clear()
        get_common_settings.cache_clear()

    def make(service: ModuleType) -> FastAPI:
        monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
        monkeypatch.setenv("RECSYS_KEY_PREFIX", f"unit-{uuid.uuid4().hex[:8]}")
        made.append(service)
        clear()
        app: FastAPI = service.create_app()
        return app

    yield make
    clear()
