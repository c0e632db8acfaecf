"""The gateway's last resort: the current model's popular items, kept in memory.

Fetched from the candidate service (`GET /popular`, a few hundred items with titles and prices:
no model in the gateway), again every `popular_refresh_seconds` and as soon as an answer shows
another model version. When the candidate stage is down, /recommend answers from this list,
filtered like the request asks; when everything but the gateway is down it still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from services.gateway.downstream import Stage, StageError
from shared.schemas.serving import ItemFilters, PopularResponse, RecommendedItem

log = logging.getLogger(__name__)
MIN_GAP_SECONDS = 0.5


@dataclass(frozen=True)
class PopularList:
    version: int
    items: list[RecommendedItem]
    fetched_at: float  # unix seconds


def pick(items: list[RecommendedItem], k: int, filters: ItemFilters) -> list[RecommendedItem]:
    """The first `k` items passing `filters` (unknown prices never satisfy a price bound)."""
    excluded = set(filters.exclude)
    out: list[RecommendedItem] = []
    for item in items:
        if item.product in excluded:
            continue
        if not filters.takes_category(item.category):
            continue
        if filters.min_price is not None and (item.price is None or item.price < filters.min_price):
            continue
        if filters.max_price is not None and (item.price is None or item.price > filters.max_price):
            continue
        out.append(item)
        if len(out) == k:
            break
    return out


class PopularCache:
    def __init__(self, candidate: Stage, size: int, refresh_seconds: float, timeout: float) -> None:
        self._candidate = candidate
        self._size = size
        self._refresh_seconds = refresh_seconds
        self._timeout = timeout
        self.current: PopularList | None = None
        self._wake = asyncio.Event()

    async def refresh(self) -> bool:
        """Fetch the list again; on failure the old one is kept. True if it was fetched."""
        try:
            got = await self._candidate.call(
                "GET", "/popular", PopularResponse, self._timeout, params={"n": self._size}
            )
        except StageError as exc:
            log.warning("popular list not refreshed (%s); keeping the cached one", exc)
            return False
        self.current = PopularList(got.version, got.items, time.time())
        return True

    def seen_version(self, version: int) -> None:
        """An answer came from `version`: refresh soon if the cached list is of another one."""
        if self.current is None or self.current.version != version:
            self._wake.set()

    async def run(self) -> None:
        """Refresh forever: periodically, and when `seen_version` asks for it."""
        while True:
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:  # never let the refresher die: it is the last-resort answer
                log.exception("popular list refresh failed")
            period = self._refresh_seconds if self.current is not None else MIN_GAP_SECONDS
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # arrives just as the event is set, and the gateway's shutdown then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._wake.wait()
            # Replicas at two versions during a rollout must not make this a busy loop.
            await asyncio.sleep(MIN_GAP_SECONDS)
