"""EventStore on a real Redis: each event in the stream and in the user's bounded recent list,
which expires after the user's last event while the stream keeps everything; and the live
history the ranker gets from a recent list."""

from __future__ import annotations

import asyncio
import uuid

from shared.events import EventStore, live_history
from shared.redis_conn import async_client
from shared.schemas.serving import Event, EventIn, EventType
from shared.settings import CommonSettings
from shared.user_keys import UserKeys
from shared.users import UserProfile, UserStore

DAY = 86_400


def settings(redis_url: str, **overrides: float) -> CommonSettings:
    prefix = f"events-{uuid.uuid4().hex[:8]}"
    return CommonSettings(redis_url=redis_url, key_prefix=prefix, **overrides)  # type: ignore[arg-type]


def test_the_recent_list_is_bounded_and_expires_after_the_last_event(redis_url: str) -> None:
    common = settings(redis_url, recent_events_per_user=3, recent_events_ttl_days=90)

    async def scenario() -> tuple[list[str], int, int, int]:
        client = async_client(redis_url)
        store = EventStore(client, common)
        key = f"{common.key_prefix}:recent:U1"
        for i in range(5):
            await store.record(EventIn(user="U1", product=f"P{i}", type="view"))
        await client.expire(key, 10)  # as if days had passed since the last event
        await store.record(EventIn(user="U1", product="P5", type="click"))
        recent = [e.product for e in await store.recent("U1")]
        ttl, stream = await client.ttl(key), await client.xlen(store.stream)
        other = await client.ttl(f"{common.key_prefix}:recent:nobody")
        await client.aclose()
        return recent, ttl, stream, other

    recent, ttl, stream, other = asyncio.run(scenario())
    assert recent == ["P5", "P4", "P3"]  # newest first, the newest three only
    assert 90 * DAY - 60 <= ttl <= 90 * DAY  # renewed by the last event
    assert stream == 6  # the stream keeps every event
    assert other == -2  # no key for a user without events


def test_an_expired_list_is_gone_and_zero_keeps_it(redis_url: str) -> None:
    short = settings(redis_url, recent_events_ttl_days=1 / DAY)  # one second
    forever = settings(redis_url, recent_events_ttl_days=0)

    async def scenario() -> tuple[list[str], int, int]:
        client = async_client(redis_url)
        fading, staying = EventStore(client, short), EventStore(client, forever)
        await fading.record(EventIn(user="U1", product="P1", type="view"))
        await staying.record(EventIn(user="U1", product="P1", type="view"))
        for _ in range(100):  # a bound on the wait, not a timing check
            if not await fading.recent("U1"):
                break
            await asyncio.sleep(0.05)
        gone = [e.product for e in await fading.recent("U1")]
        kept = await client.ttl(f"{forever.key_prefix}:recent:U1")
        stream = await client.xlen(fading.stream)
        await client.aclose()
        return gone, kept, stream

    gone, kept, stream = asyncio.run(scenario())
    assert gone == []
    assert kept == -1  # no expiry
    assert stream == 1  # the event itself stays for training


def test_live_history_counts_the_training_kind_since_training() -> None:
    def event(product: str, kind: EventType, ts: float) -> Event:
        return Event(user="U1", product=product, type=kind, ts=ts)

    recent = [  # newest first, as EventStore.recent gives them
        event("P2", "purchase", 130.0),
        event("P1", "view", 125.0),  # another kind: a seed, not history
        event("P1", "purchase", 120.0),
        event("P2", "purchase", 110.0),
        event("P3", "purchase", 90.0),  # before training ended: may be in its data already
    ]
    live = live_history(recent, "purchase", since=100.0)
    assert live is not None
    assert (live.products, live.counts, live.last_ts) == (["P2", "P1"], [2, 1], [130.0, 120.0])
    assert live_history(recent, "purchase", since=200.0) is None
    assert live_history(recent[1:2], "purchase", since=0.0) is None


def test_hidden_products_stay_hidden_past_the_recent_list(redis_url: str) -> None:
    common = settings(redis_url, recent_events_per_user=3, recent_events_ttl_days=90)

    async def scenario() -> tuple[list[str], list[str], list[str], int, bool]:
        client = async_client(redis_url)
        store = EventStore(client, common)
        await store.record(EventIn(user="U1", product="P0", type="hide"))
        await store.record(EventIn(user="U1", product="P1", type="dislike"))
        for i in range(5):  # pushes both out of the recent list (3 newest only)
            await store.record(EventIn(user="U1", product=f"V{i}", type="view"))
        got = await store.of_user("U1")
        ttl = await client.ttl(f"{common.key_prefix}:hidden:U1")
        excluded = store.excludes(Event(user="U1", product="P0", type="hide", ts=0.0))
        hidden = await store.hidden("U1")
        await client.aclose()
        return [e.product for e in got.recent], got.hidden, hidden, ttl, excluded

    recent, hidden, hidden_alone, ttl, excluded = asyncio.run(scenario())
    assert recent == ["V4", "V3", "V2"]
    assert hidden == hidden_alone == ["P0", "P1"]
    assert ttl == -1  # never expires
    assert excluded


def test_impressions_are_counted_apart_and_an_interaction_resets_them(redis_url: str) -> None:
    common = settings(redis_url, demote_after_impressions=2)

    async def scenario() -> list[object]:
        client = async_client(redis_url)
        store = EventStore(client, common)
        seen: list[object] = []
        for _ in range(2):
            await store.record(EventIn(user="U1", product="P1", type="impression"))
        await store.record(EventIn(user="U1", product="P2", type="impression"))
        got = await store.of_user("U1")
        seen += [got.demoted, got.recent]
        await store.record(EventIn(user="U1", product="P1", type="click"))
        seen.append((await store.of_user("U1")).demoted)
        await client.aclose()
        return seen

    demoted, recent, after_click = asyncio.run(scenario())
    assert demoted == ("P1",)  # shown twice; P2 once
    assert recent == []  # impressions stay out of the recent list
    assert after_click == ()


def test_each_write_a_user_answer_depends_on_gives_a_new_state_token(redis_url: str) -> None:
    """The gateway's answer cache (services/gateway/answer_cache.py) trusts this token: every
    event, and an impression only where impressions demote products, replaces it; erasure
    removes it; a profile write replaces it."""
    plain, demoting = settings(redis_url), settings(redis_url, demote_after_impressions=3)

    async def scenario() -> list[bytes | str | None]:
        client = async_client(redis_url)
        users = UserStore(client, plain.key_prefix)
        key = UserKeys(plain.key_prefix).state("U1")
        seen = [await client.get(key)]
        store = EventStore(client, plain)
        await store.record(EventIn(user="U1", product="P1", type="view"))
        seen.append(await client.get(key))
        await store.record(EventIn(user="U1", product="P1", type="impression"))
        seen.append(await client.get(key))  # no demotion: an impression changes no answer
        await store.record(EventIn(user="U1", product="P1", type="view"))
        seen.append(await client.get(key))
        await users.put("U1", UserProfile(segment="b2b"))
        seen.append(await client.get(key))
        await users.erase("U1")
        seen.append(await client.get(key))
        other = UserKeys(demoting.key_prefix).state("U1")
        shown = EventIn(user="U1", product="P", type="impression")
        await EventStore(client, demoting).record(shown)
        seen.append(await client.get(other))
        await client.aclose()
        return seen

    none, first, impression, second, profile, erased, demoted = asyncio.run(scenario())
    assert none is None and erased is None
    assert first is not None and impression == first
    assert len({first, second, profile}) == 3 and None not in (second, profile)
    assert demoted is not None
