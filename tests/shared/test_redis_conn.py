"""Redis with a password end to end (server, clients, registry, events, model watcher) and URLs
that never show the password."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import psutil
import pytest
import redis

from shared.events import EventStore
from shared.model_holder import ModelHolder
from shared.redis_conn import (
    async_client,
    free_port,
    free_ports,
    mask_url,
    redis_url,
    start_redis_server,
    sync_client,
)
from shared.registry import ModelRegistry
from shared.schemas.serving import EventIn
from shared.settings import CommonSettings

PASSWORD = 'p@ss:w/rd "with" spaces'


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    port = free_port()
    proc = start_redis_server(port, tmp_path_factory.mktemp("redis-auth"), password=PASSWORD)
    yield port, proc.pid
    proc.terminate()
    proc.wait(timeout=10)


def test_server_requires_the_password_and_does_not_show_it(secured: tuple[int, int]) -> None:
    port, pid = secured
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    wrong, right = (sync_client(redis_url(port, password=p)) for p in ("wrong", PASSWORD))
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    assert right.ping()
    wrong.close()
    right.close()
    assert PASSWORD not in " ".join(psutil.Process(pid).cmdline())  # not visible to `ps`


def test_services_connection_path_works_with_a_password(secured: tuple[int, int]) -> None:
    """What candidate, ranker and gateway do with RECSYS_REDIS_URL: registry, events, watcher."""
    url = redis_url(secured[0], password=PASSWORD)
    common = CommonSettings(redis_url=url, key_prefix=f"auth-{uuid.uuid4().hex[:6]}")
    registry = ModelRegistry.from_settings(common)
    holder = ModelHolder("test", registry, ["m.txt"], lambda a: a["m.txt"].decode())

    async def scenario() -> tuple[str, list[str], int, int | None]:
        client = async_client(url)
        store = EventStore(client, common)
        entry = await store.record(EventIn(user="U1", product="P1", type="view"))
        recent = [e.product for e in await store.recent("U1")]
        await client.aclose()
        watcher = asyncio.create_task(holder.watch(url, check_seconds=5))
        await asyncio.sleep(0.3)
        manifest, _ = registry.publish({"m.txt": b"v"}, dataset="d", params={}, metrics={})
        for _ in range(50):  # pub/sub, not the 5 s periodic check
            if holder.get() is not None:
                break
            await asyncio.sleep(0.05)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        loaded = holder.get()
        return entry, recent, manifest.version, loaded.version if loaded else None

    entry, recent, published, loaded = asyncio.run(scenario())
    registry._r.close()
    assert entry and recent == ["P1"]
    assert loaded == published


def test_urls_are_logged_without_the_password() -> None:
    url = redis_url(6380, 3, password=PASSWORD)
    assert PASSWORD not in mask_url(url) and "%40" not in mask_url(url)
    assert mask_url(url) == "redis://:***@127.0.0.1:6380/3"
    assert mask_url("redis://user:pw@[::1]:6379/0") == "redis://user:***@[::1]:6379/0"
    assert mask_url("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_clients_give_up_quickly_when_redis_is_down() -> None:
    """A few short retries, not redis-py's default of seconds: a request can still answer."""
    client = sync_client(f"redis://127.0.0.1:{free_port()}/0")
    start = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - start < 1.0
    client.close()


def test_free_ports_are_distinct_within_one_call() -> None:
    """Picked one by one, two free ports can be the same one (a stack once got its gateway's
    port for its ranker); picked together they cannot."""
    ports = free_ports(64)
    assert len(set(ports)) == 64 and all(0 < p < 65536 for p in ports)
