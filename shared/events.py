"""Accepted events: appended to a bounded Redis Stream (for the trainer) and to the user's bounded
recent-history list (read by the candidate stage on the next request: read-your-writes), which
expires `recent_events_ttl_days` after the user's last event. Products a user hid or disliked
(`hide_event_types`) also go to the user's hidden set, which never expires: never again."""

from __future__ import annotations

import time
from typing import NamedTuple

import redis.asyncio as aioredis

from shared.redis_conn import text
from shared.schemas.serving import Event, EventIn, LiveHistory
from shared.served import Attribution
from shared.settings import CommonSettings
from shared.trending import Trending
from shared.user_keys import UserKeys, new_state
from shared.users import UserRecord


class UserEvents(NamedTuple):
    """What the candidate stage reads of a user per request, in one round trip."""

    recent: list[Event]  # newest first
    hidden: list[str]  # products never to be shown to the user again
    segment: str | None = None  # from the user's profile (PUT /users/{id}), for cold start
    demoted: tuple[str, ...] = ()  # shown too often, not taken (demote_after_impressions)


class EventStore:
    def __init__(self, client: aioredis.Redis, settings: CommonSettings) -> None:
        self._r = client
        self._s = settings
        self._users = UserKeys(settings.key_prefix)
        self.stream = self._users.events
        self.trending = Trending(client, settings.key_prefix)

    def _recent_key(self, user: str) -> str:
        return self._users.recent(user)

    def _hidden_key(self, user: str) -> str:
        return self._users.hidden(user)

    async def record(self, event: EventIn, attribution: Attribution | None = None) -> str:
        """Store one event in both places atomically (MULTI/EXEC); returns the stream entry id.
        `attribution`: the served list it belongs to, stored with it."""
        ts = event.ts.timestamp() if event.ts is not None else time.time()
        a = attribution or Attribution()
        stored = Event(
            user=event.user,
            product=event.product,
            type=event.type,
            ts=ts,
            request_id=a.request_id,
            version=a.version,
            position=a.position,
            quantity=event.quantity,
            price=event.price,
        )
        payload = stored.model_dump_json()
        ttl = round(self._s.recent_events_ttl_days * 86_400)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.stream, {"event": payload}, maxlen=self._s.events_stream_max, approximate=True
            )
            # Impressions are counted apart: in the recent list they would push out what the
            # user did.
            key = self._recent_key(event.user)
            if event.type != "impression":
                pipe.lpush(key, payload)
                pipe.ltrim(key, 0, self._s.recent_events_per_user - 1)
                if ttl > 0:
                    pipe.expire(key, ttl)
            if event.type in self._s.hide_event_types:
                pipe.sadd(self._hidden_key(event.user), event.product)
            weight = self._s.event_weights.get(event.type, 1.0)
            await self.trending.add(pipe, event.product, weight, ts)
            shown = self._users.shown(event.user)
            if event.type == "impression":
                pipe.hincrby(shown, event.product, 1)
                if ttl > 0:
                    pipe.expire(shown, ttl)
            elif weight > 0:  # an interaction: its impressions start again from 0
                pipe.hdel(shown, event.product)
            if event.type != "impression" or self._s.demote_after_impressions:
                new_state(pipe, self._users.state(event.user), ttl)
            entry_id, *_ = await pipe.execute()
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def recent(self, user: str) -> list[Event]:
        """The user's newest events, newest first."""
        raw = await self._r.lrange(self._recent_key(user), 0, -1)
        return [Event.model_validate_json(item) for item in raw]

    async def of_user(self, user: str) -> UserEvents:
        """The user's newest events, hidden products, profile segment and demoted products."""
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.lrange(self._recent_key(user), 0, -1)
            pipe.smembers(self._hidden_key(user))
            pipe.hget(self._users.profiles, user)
            demote = self._s.demote_after_impressions
            if demote:
                pipe.hgetall(self._users.shown(user))
            raw, hidden, profile, *shown = await pipe.execute()
        counts = shown[0] if shown else {}
        return UserEvents(
            [Event.model_validate_json(item) for item in raw],
            sorted(text(h) for h in hidden),
            None if profile is None else UserRecord.model_validate_json(profile).segment,
            tuple(sorted(text(p) for p, n in counts.items() if int(n) >= demote)),
        )

    async def hidden(self, user: str) -> list[str]:
        """The products the user hid or disliked."""
        members = await self._r.smembers(self._hidden_key(user))
        return sorted(h.decode() if isinstance(h, bytes) else str(h) for h in members)

    def weight(self, event: Event) -> float:
        """The configured weight of the event's type."""
        return self._s.event_weights.get(event.type, 1.0)

    def excludes(self, event: Event) -> bool:
        """Whether the user now has the product (e.g. bought it) and must not get it again."""
        return event.type in self._s.exclude_event_types or event.type in self._s.hide_event_types


def live_history(events: list[Event], kind: str, since: float) -> LiveHistory | None:
    """The events of type `kind` (what the training data's interactions are) at or after `since`
    (earlier ones may be in the training data already) per product: how many and when last, in
    the order the products were first met; None if there are none."""
    counts: dict[str, int] = {}
    last: dict[str, float] = {}
    for e in events:
        if e.type == kind and e.ts >= since:
            counts[e.product] = counts.get(e.product, 0) + 1
            last[e.product] = max(last.get(e.product, e.ts), e.ts)
    if not counts:
        return None
    products = list(counts)
    return LiveHistory(
        products=products, counts=[counts[p] for p in products], last_ts=[last[p] for p in products]
    )
