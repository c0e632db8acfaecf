"""Full answers kept in the gateway, per user and what was asked, served again while nothing
they were computed from has changed: the same served model version (or the experiment arm's),
the same user state token (`UserKeys.state`: every event, hide or profile write of the user
replaces it, whichever gateway took it), no product opened in the live catalog since (added,
restored or available again: this gateway's `CatalogMirror.opened`), and at most
`answer_cache_seconds` old (what nothing tracks: trending, the clock in the ranker's features).
One Redis round trip checks the version and the token, instead of the candidate and ranker calls.

What comes after the pipeline runs again on a cached answer: the live catalog (a product sold
out since is dropped, prices are today's), business rules, the exploration slot, and the served-
list record (every answer is logged, cached or not). Degraded answers are never kept; the
route neither looks up nor keeps those with explanations (`explain=true`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis

from services.gateway.pipeline import Answer
from shared.live_catalog import POLL_SECONDS, CatalogMirror
from shared.observability import ANSWER_CACHE
from shared.registry import current_version_key
from shared.schemas.serving import ItemFilters
from shared.user_keys import UserKeys

log = logging.getLogger(__name__)


class Key(NamedTuple):
    """Everything the pipeline was asked."""

    user: str
    k: int  # items asked of the pipeline (the rules' longer list included)
    filters: str  # as JSON
    segment: str | None
    pinned: int | None  # an experiment arm's version


@dataclass(frozen=True)
class Stamp:
    """What an answer's validity is checked against: read before it is computed, so that a
    change landing meanwhile makes the answer stale rather than the change invisible."""

    version: int | None  # the version the answer must come from (current, or the arm's)
    state: bytes | None  # the user's state token; None: the user has no live state
    catalog: int  # the live catalog's openings (`CatalogMirror.opened`)


@dataclass(frozen=True)
class _Entry:
    stamp: Stamp
    answer: Answer
    at: float  # time.monotonic() when stored


def cache_key(
    user: str, k: int, filters: ItemFilters, segment: str | None, pinned: int | None
) -> Key:
    return Key(user, k, filters.model_dump_json(exclude_defaults=True), segment, pinned)


# The stages follow the live catalog with mirrors of their own, each up to a poll behind this
# gateway's: an answer computed this soon after a product opened may lack it though stamped
# after the opening, so it is not kept.
SETTLE_SECONDS = 5 * POLL_SECONDS


class AnswerCache:
    def __init__(
        self, client: Any, key_prefix: str, catalog: CatalogMirror, items: int, seconds: float
    ) -> None:
        self._r = client  # redis.asyncio.Redis
        self._catalog = catalog
        self._keys = UserKeys(key_prefix)
        self._current = current_version_key(key_prefix)
        self._items = items  # items of all kept answers at most: memory grows with items
        self._seconds = seconds
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self.held = 0  # items of the kept answers

    @property
    def enabled(self) -> bool:
        return self._items > 0 and self._seconds > 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: Key) -> None:
        self.held -= len(self._entries.pop(key).answer.items)

    async def stamp(self, user: str, pinned: int | None) -> Stamp | None:
        """The served version and the user's state now (one MGET); None when Redis cannot tell,
        and then nothing is served from or kept in the cache."""
        try:
            current, state = await self._r.mget(self._current, self._keys.state(user))
        except redis.RedisError as exc:
            log.info("answer cache bypassed, Redis unavailable: %s", exc)
            return None
        version = pinned if pinned is not None else None if current is None else int(current)
        return Stamp(version, state, self._catalog.opened)

    def get(self, key: Key, stamp: Stamp) -> Answer | None:
        """The kept answer for `key` if computed under `stamp` and young enough, else None (and
        a stale one is dropped)."""
        entry = self._entries.get(key)
        if entry is not None:
            if entry.stamp == stamp and time.monotonic() - entry.at < self._seconds:
                self._entries.move_to_end(key)
                ANSWER_CACHE.labels("hit").inc()
                return entry.answer
            self._drop(key)
        ANSWER_CACHE.labels("miss").inc()
        return None

    def put(self, key: Key, stamp: Stamp, answer: Answer) -> None:
        """Keep a full answer of the version `stamp` expects (one from a version the stages have
        not swapped to or from yet is not kept, nor one computed within SETTLE_SECONDS of a
        product opening); the least recently used go while more than `items` items are kept."""
        if answer.degraded is not None or answer.version != stamp.version:
            return
        if len(answer.items) > self._items:  # would push out everything, itself included
            return
        if time.monotonic() - self._catalog.opened_at < SETTLE_SECONDS:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Entry(stamp, answer, time.monotonic())
        self.held += len(answer.items)
        while self.held > self._items:
            self._drop(next(iter(self._entries)))

    def forget(self, user: str) -> None:
        """Drop every answer of `user` (erasure through this gateway: no copy of theirs stays
        here; other gateways' copies can no longer be served, their state token is gone)."""
        for key in [k for k in self._entries if k.user == user]:
            self._drop(key)
