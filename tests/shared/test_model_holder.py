"""ModelHolder: loads the current version, refuses corrupt ones, follows pub/sub, rolls back."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import redis

from shared.artifacts import RedisArtifactStore
from shared.model_holder import ModelHolder
from shared.redis_conn import free_port, redis_url, start_redis_server, sync_client
from shared.registry import ModelRegistry


def _holder(registry: ModelRegistry) -> ModelHolder[str]:
    return ModelHolder("test", registry, ["m.txt"], lambda a: a["m.txt"].decode())


def _publish(registry: ModelRegistry, text: str) -> int:
    manifest, _ = registry.publish({"m.txt": text.encode()}, dataset="d", params={}, metrics={})
    return manifest.version


def test_sync_loads_current_and_keeps_previous(registry: ModelRegistry) -> None:
    holder = _holder(registry)
    asyncio.run(holder.sync())
    assert holder.get() is None  # nothing published yet
    v1 = _publish(registry, "one")
    asyncio.run(holder.sync())
    assert holder.get() is not None and holder.get().model == "one"  # type: ignore[union-attr]
    v2 = _publish(registry, "two")
    asyncio.run(holder.sync())
    assert holder.get().version == v2  # type: ignore[union-attr]
    assert holder.get(v1).model == "one"  # type: ignore[union-attr]  # still there for pinned requests
    assert holder.get(999) is None


def test_corrupt_version_is_refused_and_old_keeps_serving(
    registry: ModelRegistry, redis_client: redis.Redis
) -> None:
    holder = _holder(registry)
    _publish(registry, "good")
    asyncio.run(holder.sync())
    v2 = _publish(registry, "bad")
    prefix = registry.channel.rsplit(":", 2)[0]
    redis_client.hset(f"{prefix}:artifacts:{v2}", "m.txt", b"flipped bits")
    asyncio.run(holder.sync())
    loaded = holder.get()
    assert loaded is not None and loaded.model == "good"
    asyncio.run(holder.sync())  # refused once, not retried in a loop
    assert holder.get().model == "good"  # type: ignore[union-attr]


def test_a_refused_current_version_says_why_until_one_loads(registry: ModelRegistry) -> None:
    def build(a: dict[str, bytes]) -> str:
        if a["m.txt"] == b"old":
            raise ValueError("model was built with a different feature set than this code serves")
        return a["m.txt"].decode()

    holder = ModelHolder("test", registry, ["m.txt"], build)
    v1 = _publish(registry, "old")
    asyncio.run(holder.sync())
    assert holder.get() is None
    assert holder.refusal == (
        f"model version {v1} refused: "
        "model was built with a different feature set than this code serves"
    )
    asyncio.run(holder.sync())  # still the current version: still said
    assert holder.refusal is not None and str(v1) in holder.refusal
    _publish(registry, "new")
    asyncio.run(holder.sync())
    assert holder.get().model == "new" and holder.refusal is None  # type: ignore[union-attr]


def test_rollback_swaps_back_to_previous(registry: ModelRegistry) -> None:
    holder = _holder(registry)
    v1 = _publish(registry, "one")
    asyncio.run(holder.sync())
    _publish(registry, "two")
    asyncio.run(holder.sync())
    registry.activate(v1)
    asyncio.run(holder.sync())
    assert holder.get().version == v1  # type: ignore[union-attr]


def test_watch_swaps_on_publish_message(registry: ModelRegistry, redis_url: str) -> None:
    holder = _holder(registry)

    async def scenario() -> float:
        # A long safety-net period: only the pub/sub message can explain a quick swap.
        task = asyncio.create_task(holder.watch(redis_url, check_seconds=30))
        await asyncio.sleep(0.3)
        v = await asyncio.to_thread(_publish, registry, "fresh")
        loop = asyncio.get_running_loop()
        start = loop.time()
        while holder.get() is None or holder.get().version != v:  # type: ignore[union-attr]
            assert loop.time() - start < 5, "no swap within 5 s of publishing"
            await asyncio.sleep(0.02)
        task.cancel()
        return loop.time() - start

    assert asyncio.run(scenario()) < 5


def _publish_past(registry: ModelRegistry, holder: ModelHolder[str]) -> int:
    """Publish "one", then two newer versions, the holder following: "one" is neither its
    current nor its previous version any more. Returns that first version."""
    v1 = _publish(registry, "one")
    asyncio.run(holder.sync())
    for text in ("two", "three"):
        _publish(registry, text)
        asyncio.run(holder.sync())
    return v1


def test_a_request_pinned_to_an_older_version_still_gets_it(registry: ModelRegistry) -> None:
    holder = _holder(registry)
    v1 = _publish_past(registry, holder)
    assert holder.get(v1) is None  # neither current nor previous any more
    pinned = asyncio.run(holder.get_pinned(v1))
    assert pinned is not None and pinned.model == "one"
    assert asyncio.run(holder.get_pinned(999)) is None  # no such version: nothing to load


def test_watch_survives_a_redis_restart_and_keeps_serving(tmp_path: Path) -> None:
    """Redis goes away and comes back (same port, same data): the loaded model serves all along,
    and a version published after the restart arrives by pub/sub, not the periodic check."""
    port = free_port()
    server = start_redis_server(port, tmp_path)
    url = redis_url(port)
    client = sync_client(url)
    registry = ModelRegistry(client, RedisArtifactStore(client, "restart"), "restart")
    holder = _holder(registry)
    _publish(registry, "before")

    async def scenario() -> tuple[list[str], float]:
        nonlocal server
        task = asyncio.create_task(holder.watch(url, check_seconds=30))
        while holder.get() is None:
            await asyncio.sleep(0.02)
        server.terminate()
        await asyncio.to_thread(server.wait, 10)
        served = []
        for _ in range(10):  # Redis down: the model still answers
            loaded = holder.get()
            served.append(loaded.model if loaded else "nothing")
            await asyncio.sleep(0.1)
        server = await asyncio.to_thread(start_redis_server, port, tmp_path)
        await asyncio.sleep(1.5)  # the watcher retries about every second; let it resubscribe
        v = await asyncio.to_thread(_publish, registry, "after")
        loop = asyncio.get_running_loop()
        start = loop.time()
        while holder.get().version != v:  # type: ignore[union-attr]
            assert loop.time() - start < 5, "no swap within 5 s after the restart"
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return served, loop.time() - start

    try:
        served, delay = asyncio.run(scenario())
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)
    print(f"model holder across a Redis restart: swap {delay:.2f}s after publishing")
    assert served == ["before"] * 10
    assert delay < 1.0  # pub/sub (the periodic check is 30 s here)


def test_redis_down_does_not_refuse_a_version_for_good(tmp_path: Path) -> None:
    """Failing to load because Redis is unreachable says nothing about the version itself."""
    port = free_port()
    server = start_redis_server(port, tmp_path)
    client = sync_client(redis_url(port))
    registry = ModelRegistry(client, RedisArtifactStore(client, "down"), "down")
    holder = _holder(registry)
    v1 = _publish_past(registry, holder)
    server.terminate()
    server.wait(timeout=10)
    try:
        assert asyncio.run(holder.get_pinned(v1)) is None  # cannot load it now...
        server = start_redis_server(port, tmp_path)
        pinned = asyncio.run(holder.get_pinned(v1))  # ...but can once Redis is back
        assert pinned is not None and pinned.model == "one"
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)
