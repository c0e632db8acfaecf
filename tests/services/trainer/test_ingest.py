"""Events and served lists from their Redis Streams to Parquet: 10,000 of each across a killed
ingester, exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import redis
import redis.asyncio as aioredis

from services.trainer.ingest import ingest, load_events
from shared.events import EventStore
from shared.schemas.serving import Event, EventIn, EventType
from shared.served import ServedItem, ServedList, ServedLog
from shared.settings import CommonSettings

N = 10_000
KINDS: tuple[EventType, ...] = ("view", "click", "add_to_cart", "purchase")


def _post_events(redis_url: str, prefix: str) -> None:
    async def go() -> None:
        client = aioredis.Redis.from_url(redis_url)
        store = EventStore(client, CommonSettings(redis_url=redis_url, key_prefix=prefix))
        for n in range(N):
            kind: EventType = KINDS[n % 4]
            await store.record(EventIn(user=f"U{n % 97}", product=f"P{n % 89}", type=kind))
        await client.aclose()

    asyncio.run(go())


def test_ten_thousand_events_survive_a_killed_ingester_exactly_once(
    redis_url: str, tmp_path: Path
) -> None:
    prefix = f"ingest-{uuid.uuid4().hex[:6]}"
    _post_events(redis_url, prefix)
    client = redis.Redis.from_url(redis_url)
    entries: Any = client.xrange(f"{prefix}:events")  # before ingestion trims them away
    stream_ids = {entry_id.decode() for entry_id, _ in entries}
    assert len(stream_ids) == N
    out = tmp_path / "events"
    env = {
        **os.environ,
        "RECSYS_REDIS_URL": redis_url,
        "RECSYS_KEY_PREFIX": prefix,
        "RECSYS_WORK_DIR": str(tmp_path),
    }
    cmd = [sys.executable, "-m", "services.trainer.ingest", "50"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(out.glob("events-*.parquet"))) < 5:  # killed somewhere mid-stream
        assert time.monotonic() < deadline and first.poll() is None, "ingester never got going"
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    written_before = len(list(out.glob("events-*.parquet")))
    assert 0 < written_before < N // 50, "the kill should land mid-stream"

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert "ingested" in done.stdout
    events = load_events(out)
    assert len(events) == N
    assert events["id"].is_unique
    assert set(events["id"]) == stream_ids  # none lost, none invented
    assert client.xlen(f"{prefix}:events") == 0  # acknowledged, so gone from Redis
    assert client.xpending(f"{prefix}:events", "trainer")["pending"] == 0
    assert ingest(client, f"{prefix}:events", out) == 0  # nothing left: a rerun adds nothing
    assert len(load_events(out)) == N
    client.close()


def _serve_lists(redis_url: str, prefix: str) -> None:
    async def go() -> None:
        client = aioredis.Redis.from_url(redis_url)
        log = ServedLog(client, CommonSettings(redis_url=redis_url, key_prefix=prefix))
        for n in range(N):
            items = [ServedItem(product=f"P{(n + j) % 89}", position=j + 1, score=1.0 - j / 10,
                                reason="r") for j in range(3)]  # fmt: skip
            await log.record(
                ServedList(id=f"req-{n}", user=f"U{n % 97}", ts=time.time(), version=1, items=items)
            )
        await client.aclose()

    asyncio.run(go())


def test_ten_thousand_served_lists_survive_a_killed_ingester_exactly_once(
    redis_url: str, tmp_path: Path
) -> None:
    prefix = f"served-{uuid.uuid4().hex[:6]}"
    _serve_lists(redis_url, prefix)
    out = tmp_path / "served"
    env = {**os.environ, "RECSYS_REDIS_URL": redis_url, "RECSYS_KEY_PREFIX": prefix,
           "RECSYS_WORK_DIR": str(tmp_path)}  # fmt: skip
    cmd = [sys.executable, "-m", "services.trainer.ingest", "50"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(out.glob("served-*.parquet"))) < 5:  # killed somewhere mid-stream
        assert time.monotonic() < deadline and first.poll() is None, "ingester never got going"
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert 0 < len(list(out.glob("served-*.parquet"))) < N // 50, "the kill should land mid-stream"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    frame = pd.concat([pd.read_parquet(f) for f in out.glob("served-*.parquet")])
    unique = frame.drop_duplicates("id")  # the stream id: a batch re-written after the kill
    assert sorted(unique["request_id"]) == sorted(f"req-{n}" for n in range(N))
    assert orjson.loads(unique.iloc[0]["items"])[0]["position"] == 1


def _event(n: int) -> bytes:
    return Event(user=f"U{n}", product="P1", type="view", ts=1.7e9 + n).model_dump_json().encode()


def test_what_was_ingested_leaves_the_stream_and_what_is_pending_stays(
    redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    stream = f"trim-{uuid.uuid4().hex[:6]}"
    for n in range(5):
        client.xadd(stream, {"event": _event(n)})
    assert ingest(client, stream, tmp_path, kind="events") == 5
    assert client.xlen(stream) == 0  # all five are in Parquet, acknowledged
    ids = [client.xadd(stream, {"event": _event(n)}) for n in range(5, 8)]
    # another consumer reads two and dies before acknowledging them
    taken: Any = client.xreadgroup("trainer", "crashed", {stream: ">"}, count=2)
    assert [i for i, _ in taken[0][1]] == ids[:2]
    assert ingest(client, stream, tmp_path, kind="events") == 1
    # the two pending entries, and what came after the oldest of them, are kept
    kept: Any = client.xrange(stream)
    assert [i for i, _ in kept] == ids
    client.xack(stream, "trainer", *ids[:2])
    assert ingest(client, stream, tmp_path, kind="events") == 0
    assert client.xlen(stream) == 0
