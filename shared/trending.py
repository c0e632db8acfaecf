"""Trending products: every accepted event's weight, decayed over time, per product, in Redis.

One sorted set per half-life (TRENDING_WINDOWS). An event adds `weight * 2 ** ((ts - epoch) /
half_life)` to its product instead of decaying every member on every event: reading divides by
the same factor for now, so scores are event weights decayed to the present. When the factor
grows large the whole set is rescaled at once (ZUNIONSTORE with a weight) and the epoch moves;
a Lua script does it atomically with the increment, so replicas never race.
"""

from __future__ import annotations

import math
import time
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

# The half-life of each window of shared.schemas.serving.TrendingWindow.
TRENDING_WINDOWS: dict[str, float] = {"1h": 3600.0, "1d": 86_400.0, "7d": 7 * 86_400.0,
                                      "30d": 30 * 86_400.0}  # fmt: skip
# Members beyond this many (the weakest) are dropped: the set stays bounded on a big catalog.
MAX_MEMBERS = 50_000

# KEYS: the sorted set, the epochs hash. ARGV: product, weight, ts, half-life, window, bound.
_ADD = """
local epoch = tonumber(redis.call('HGET', KEYS[2], ARGV[5]))
local ts, half = tonumber(ARGV[3]), tonumber(ARGV[4])
if not epoch then
  epoch = ts
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[3])
end
local e = (ts - epoch) / half
if e > 60 then
  local shift = math.floor(e)
  redis.call('ZUNIONSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', tostring(2 ^ -shift))
  epoch = epoch + shift * half
  redis.call('HSET', KEYS[2], ARGV[5], string.format('%.6f', epoch))
  e = e - shift
end
redis.call('ZINCRBY', KEYS[1], tonumber(ARGV[2]) * 2 ^ e, ARGV[1])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[6])
if extra > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
end
return 1
"""


class Trending:
    def __init__(self, client: aioredis.Redis, key_prefix: str) -> None:
        self._r = client
        self._prefix = f"{key_prefix}:trending"
        self._epochs = f"{self._prefix}:epochs"
        self._add: AsyncScript = client.register_script(_ADD)

    def key(self, window: str) -> str:
        return f"{self._prefix}:{window}"

    async def add(self, pipe: Any, product: str, weight: float, ts: float) -> None:
        """Queue the event's increments on `pipe` (the event store's transaction)."""
        if weight <= 0:
            return  # negative feedback is no trend
        ts = min(ts, time.time())  # a client clock ahead of ours must not outweigh every other
        for window, half in TRENDING_WINDOWS.items():
            args: list[str | float] = [product, weight, ts, half, window, MAX_MEMBERS]
            await self._add(keys=[self.key(window), self._epochs], args=args, client=pipe)

    async def top(self, window: str, n: int) -> list[tuple[str, float]]:
        """The `n` strongest products of `window`, their decayed weight as of now."""
        half = TRENDING_WINDOWS[window]
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hget(self._epochs, window)
            pipe.zrevrange(self.key(window), 0, n - 1, withscores=True)
            epoch, members = await pipe.execute()
        if epoch is None:
            return []
        factor = math.pow(2.0, -(time.time() - float(epoch)) / half)
        return [
            (m.decode() if isinstance(m, bytes) else str(m), float(score) * factor)
            for m, score in members
        ]
