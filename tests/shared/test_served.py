"""The served-list log: the record attribution keeps per list (what it needs, at a fraction of
the size), and what logging one answer writes to a real Redis in its one script call."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from shared.redis_conn import async_client, text
from shared.served import POSITIONS, ServedItem, ServedList, ServedLog, ServedRecord, _within
from shared.settings import CommonSettings


def _served() -> ServedList:
    items = [
        ServedItem(product=f"P{n}", position=n, score=1.0 / n, reason=f"similar_to:Q{n}")
        for n in range(1, 11)
    ]
    items[6] = items[6].model_copy(update={"propensity": 0.02, "reason": "explore"})
    return ServedList(id="r1", user="u@example.com", ts=1.7e9, version=7, arm="exp/b",
                      degraded=None, items=items)  # fmt: skip


def test_the_record_keeps_order_and_draws_and_is_a_fraction_of_the_list() -> None:
    served = _served()
    record = ServedRecord.of(served)
    assert record.products == [f"P{n}" for n in range(1, 11)] and record.explored == [7]
    assert len(record.model_dump_json()) * 3 < len(served.model_dump_json())
    found = _within("r1", record, "P7", "request_id")
    assert (found.position, found.explored, found.version, found.arm) == (7, True, 7, "exp/b")
    assert _within("r1", record, "P3", "latest_list").position == 3
    missing = _within("r1", record, "P99", "latest_list")
    assert missing.position is None and not missing.explored


def test_records_written_before_as_full_lists_still_parse() -> None:
    served = _served()
    assert ServedRecord.parse(served.model_dump_json()) == ServedRecord.of(served)
    assert ServedRecord.parse(ServedRecord.of(served).model_dump_json().encode()) == (
        ServedRecord.of(served)
    )


def test_logging_a_list_writes_stream_record_index_counters_and_draws(redis_url: str) -> None:
    prefix = f"served-{uuid.uuid4().hex[:8]}"
    served = _served().model_copy(update={"arm": None, "ts": time.time()})
    many = ServedList(id="r2", user="v", ts=served.ts, version=7, items=[
        ServedItem(product=f"M{n}", position=n, score=0.0, reason="popular")
        for n in range(1, POSITIONS + 6)])  # fmt: skip
    empty = ServedList(id="r3", user="w", ts=served.ts, version=8, degraded="ranker", items=[])

    async def go() -> None:
        client: Any = async_client(redis_url)  # redis-py's annotations vary between releases
        try:
            settings = CommonSettings(redis_url=redis_url, key_prefix=prefix)
            log = ServedLog(client, settings)
            for one in (served, many, empty):
                await log.record(one)
            (_, fields), *_ = await client.xrange(log.stream)
            assert ServedList.model_validate_json(fields[b"served"]) == served  # full list
            assert await client.xlen(log.stream) == 3
            raw = await client.get(f"{prefix}:served:list:r1")  # what attribution reads
            assert raw is not None and ServedRecord.parse(raw) == ServedRecord.of(served)
            ttl = await client.ttl(f"{prefix}:served:list:r1")
            assert 0 < ttl <= settings.attribution_window_hours * 3600
            found, note = await log.attribute("u@example.com", "P3", None)  # the user's index
            assert (found.request_id, found.position, note) == ("r1", 3, None)
            _, problem = await log.attribute("v", "P3", "r1")
            assert problem is not None and "another user" in problem
            ((draw, clicked),) = await log.explored(10)
            assert (draw.id, draw.product, draw.propensity, clicked) == ("r1", "P7", 0.02, False)
            metrics = await log.metrics(1, None)
            by = {v.version: v for v in metrics.versions}
            assert set(by) == {7, 8}
            assert (by[7].lists, by[7].items_shown) == (2, 10 + POSITIONS + 5)
            assert (by[8].lists, by[8].items_shown) == (1, 0)
            hour = int(served.ts // 3600)
            counters = await client.hgetall(f"{prefix}:online:7:{hour}")
            shown = {text(k): int(v) for k, v in counters.items() if text(k).startswith("shown@")}
            # both lists count at positions 1-10, only the long one up to POSITIONS, none past
            assert shown == {f"shown@{p}": 2 if p <= 10 else 1 for p in range(1, POSITIONS + 1)}
        finally:
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    asyncio.run(go())
