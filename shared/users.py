"""Users as a shop knows them: a profile for cold start, their history, and erasure on request.

A profile (`PUT /users/{id}`: age, segment) lives in a Redis hash beside the events; the
candidate stage reads its segment for a user without history, and the next training takes the
profiles in. Erasing a user (`DELETE /users/{id}`) removes at once everything Redis holds of
them (recent events, hidden products, profile, their entries in the event stream) and records
a hash of the id (not the id) in the erased set: the trainer removes their rows from the
ingested Parquet files and leaves them out of every later training, whatever the dataset.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, get_args

import orjson
import redis.asyncio as aioredis
from pydantic import Field, FiniteFloat

from shared.redis_conn import text
from shared.schemas.base import Id, Strict
from shared.schemas.serving import Event, EventType
from shared.user_keys import UserKeys, new_state

# Event stream entries read per step while looking for an erased user's events.
SCAN_STEP = 10_000
# What an experiment arm counts per user (shared/served.py's Lua: "<user>\0<what>"): lists,
# items, clicked items, and lists with each kind of event.
ARM_USER_FIELDS = ("n", "m", "z", *(f"y:{kind}" for kind in get_args(EventType)))


class UserProfile(Strict):
    """`PUT /users/{id}`: what the shop knows of a user, for cold start and training."""

    age: FiniteFloat | None = Field(default=None, ge=0, le=150, strict=True)
    segment: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    )


class UserRecord(UserProfile):
    user: Id
    updated_at: float


class UserHistory(Strict):
    """`GET /users/{id}/history`: what the service holds of a user now."""

    user: str
    profile: UserRecord | None
    events: list[Event]  # the recent list, newest first
    hidden: list[str]  # products never to be shown to the user again


class UserErased(Strict):
    """`DELETE /users/{id}`: what was erased now, and the job erasing the rest."""

    user: str
    recent_events: int
    hidden_products: int
    profile: bool
    stream_events: int  # accepted events not yet ingested
    served_lists: int = 0  # answers logged for them (records and stream entries)
    parquet_job_id: str | None  # the trainer's job removing their ingested events
    note: str = (
        "erased from Redis now; the trainer removes the user's ingested events from Parquet "
        "and leaves the user out of every later training"
    )


def user_hash(user: str) -> str:
    """How an erased user is remembered: enough to leave them out, not their id."""
    return hashlib.sha256(user.encode("utf-8")).hexdigest()


class UserStore:
    def __init__(self, client: aioredis.Redis, key_prefix: str) -> None:
        # Any: redis-py's command annotations change between releases (sync/async unions)
        self._r: Any = client
        self.keys = UserKeys(key_prefix)

    async def put(self, user: str, profile: UserProfile) -> UserRecord:
        record = UserRecord(user=user, updated_at=time.time(), **profile.model_dump())
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.profiles, user, record.model_dump_json())
            pipe.srem(self.keys.erased, user_hash(user))  # back as a new user
            new_state(pipe, self.keys.state(user), 0)  # a new segment: another cold start
            await pipe.execute()
        return record

    async def get(self, user: str) -> UserRecord | None:
        raw = await self._r.hget(self.keys.profiles, user)
        return None if raw is None else UserRecord.model_validate_json(raw)

    async def history(self, user: str) -> UserHistory:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.profiles, user)
            pipe.lrange(self.keys.recent(user), 0, -1)
            pipe.smembers(self.keys.hidden(user))
            profile, recent, hidden = await pipe.execute()
        return UserHistory(
            user=user,
            profile=None if profile is None else UserRecord.model_validate_json(profile),
            events=[Event.model_validate_json(e) for e in recent],
            hidden=sorted(h.decode() if isinstance(h, bytes) else h for h in hidden),
        )

    async def erase(self, user: str) -> tuple[int, int, bool, int, int]:
        """Erase what Redis holds of `user`; (recent events, hidden products, had a profile,
        event stream entries, served lists) removed. The erased set is written first: a
        training that starts meanwhile already leaves the user out."""
        await self._r.sadd(self.keys.erased, user_hash(user))
        lists = {text(r) for r in await self._r.hvals(self.keys.served_by(user))}
        records = [self.keys.served_list(r) for r in lists]
        removed_lists = int(await self._r.delete(*records)) if records else 0
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.llen(self.keys.recent(user))
            pipe.scard(self.keys.hidden(user))
            pipe.hdel(self.keys.profiles, user)
            pipe.delete(
                self.keys.recent(user),
                self.keys.hidden(user),
                self.keys.shown(user),
                self.keys.served_by(user),
                self.keys.state(user),
            )
            recent, hidden, profile, _ = await pipe.execute()
        events = await self._erase_stream(self.keys.events, b"event", user)
        served = await self._erase_stream(self.keys.served, b"served", user)
        await self._erase_draws(user)
        await self._erase_arm_counts(user)
        return int(recent), int(hidden), bool(profile), events, max(removed_lists, served)

    async def _erase_arm_counts(self, user: str) -> None:
        """The user's per-user counts in every experiment arm (shared/served.py keeps them for
        the test's variance); the arms' totals keep their share, as aggregates."""
        fields = [f"{user}\0{what}" for what in ARM_USER_FIELDS]
        async for key in self._r.scan_iter(match=f"{self.keys.prefix}:exp:*:users", count=1000):
            await self._r.hdel(key, *fields)

    async def _erase_draws(self, user: str) -> None:
        """The user's exploration draws (a bounded list, part of their served lists)."""
        needle = b'"user":' + orjson.dumps(user)
        entries = await self._r.lrange(self.keys.explored, 0, -1)
        for entry in {e for e in entries if needle in e}:
            await self._r.lrem(self.keys.explored, 0, entry)

    async def _erase_stream(self, stream: str, field: bytes, user: str) -> int:
        """XDEL the user's entries of `stream`: those not ingested yet (the ingester trims what
        it has acknowledged; the trainer's erase job takes the user out of Parquet)."""
        start, removed = "-", 0
        needle = b'"user":' + orjson.dumps(user)  # as the stored event's JSON writes it
        while True:
            entries = await self._r.xrange(stream, min=start, count=SCAN_STEP)
            if not entries:
                return removed
            mine = [eid for eid, fields in entries if needle in (fields or {}).get(field, b"")]
            if mine:
                removed += int(await self._r.xdel(stream, *mine))
            if len(entries) < SCAN_STEP:
                return removed
            last = entries[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else last)
