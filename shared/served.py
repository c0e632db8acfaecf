"""What the service showed, and what users did with it: served lists, attribution, online metrics.

Every `/recommend` answer is a `ServedList` (its id is the request's `X-Request-ID`), written in
one Redis round trip: to a bounded stream (ingested into Parquet beside the events, as they
are), as a record kept for the attribution window, into the user's "last list that showed each
product" hash, and into hourly counters per model version. An event names its list
(`request_id`), or is attributed to the latest list that showed the product to the user within
the window; attributed events count into the same hourly counters, from which
`GET /online/metrics` reads rates per version.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from pydantic import Field

from shared.experiments import LATENCIES, arm_keys
from shared.redis_conn import text
from shared.schemas.base import Strict
from shared.served_scripts import COUNT_ARM, RECORD
from shared.settings import CommonSettings
from shared.user_keys import UserKeys

HOUR = 3600
# Counted per position up to here (CTR by position).
POSITIONS = 20
# An experiment's counters outlive its last answer by this long (its report stays readable).
EXPERIMENT_DAYS = 90
# The exploration draws kept for off-policy estimates (the latest; older ones are in Parquet).
EXPLORE_LOG = 50_000


class ServedItem(Strict):
    product: str
    position: int  # 1-based
    score: float
    reason: str
    # The probability it had of being shown there: only for the exploration slot's draw (a
    # ranked item's is 1 given the model).
    propensity: float | None = None


class Explored(Strict):
    """One exploration draw, as the off-policy estimate reads it."""

    id: str  # the served list
    user: str
    product: str
    propensity: float
    version: int
    ts: float


class ServedList(Strict):
    id: str
    user: str
    ts: float
    version: int
    arm: str | None = None  # "<experiment>/<arm>" when the user is in a running experiment
    degraded: str | None = None
    items: list[ServedItem]


class ServedRecord(Strict):
    """What attribution looks a served list up for, kept the attribution window long: its
    products in order (position = index + 1) and which were exploration draws, without the
    scores and reasons the stream's full record carries (~1.3 KB a list; at 150 answers a
    second a day of those would hold ~16 GB of Redis)."""

    user: str
    version: int
    arm: str | None = None
    products: list[str]
    explored: list[int] = Field(default_factory=list)  # positions of exploration draws

    @classmethod
    def of(cls, served: ServedList) -> ServedRecord:
        return cls(
            user=served.user,
            version=served.version,
            arm=served.arm,
            products=[i.product for i in sorted(served.items, key=lambda i: i.position)],
            explored=[i.position for i in served.items if i.propensity is not None],
        )

    @classmethod
    def parse(cls, raw: bytes | str) -> ServedRecord:
        try:
            return cls.model_validate_json(raw)
        except ValueError:  # a full ServedList, as records were written before
            return cls.of(ServedList.model_validate_json(raw))


class Attribution(Strict):
    """Which served list an event belongs to, and how that was decided."""

    request_id: str | None = None
    version: int | None = None
    arm: str | None = None
    position: int | None = None  # the product's place in that list
    how: Literal["request_id", "latest_list", "none"] = "none"
    note: str | None = None  # e.g. why a given request_id was not used
    explored: bool = False  # the product was the list's exploration draw


class VersionMetrics(Strict):
    version: int
    lists: int
    items_shown: int
    clicks: int
    add_to_cart: int
    purchases: int
    revenue: float
    ctr: float | None  # clicks per item shown
    add_to_cart_rate: float | None  # per list
    conversion_rate: float | None  # purchases per list
    revenue_per_1000_lists: float | None
    ctr_by_position: dict[int, float] = Field(default_factory=dict)


class OnlineMetrics(Strict):
    """`GET /online/metrics`: the last `window_hours`, per model version."""

    window_hours: int
    versions: list[VersionMetrics]


class ServedLog:
    def __init__(self, client: aioredis.Redis, settings: CommonSettings) -> None:
        # Any: redis-py's command annotations change between releases (sync/async unions)
        self._r: Any = client
        self._s = settings
        p = settings.key_prefix
        self._keys = UserKeys(p)  # the names erasure deletes too
        self.stream = self._keys.served
        self._prefix = p
        self._window = max(1, round(settings.attribution_window_hours * HOUR))
        # An arm counts an event, and the first of its kind per list (and per item, for CTR),
        # in one atomic step: the sets remember which lists and items already counted.
        self._count_arm = self._r.register_script(COUNT_ARM)
        self._record_list = self._r.register_script(RECORD)
        self._versions = f"{p}:online:versions"
        self.explored_key = self._keys.explored
        self.explore_clicked_key = f"{p}:explore:clicked"

    def _record(self, rid: str) -> str:
        return self._keys.served_list(rid)

    def _shown_in(self, user: str) -> str:
        return self._keys.served_by(user)

    def _counters(self, version: int, hour: int) -> str:
        return f"{self._prefix}:online:{version}:{hour}"

    async def record(self, served: ServedList, ms: float | None = None) -> None:
        """Log the list and count it (in its arm too, with the answer's `ms`), in one round
        trip (shared/served_scripts.py RECORD says what it writes)."""
        keys = [self.stream, self._record(served.id), self._shown_in(served.user),
                self._counters(served.version, int(served.ts // HOUR)), self._versions,
                self.explored_key]  # fmt: skip
        rest: dict[str, Any] = {
            "id": served.id, "version": served.version,
            "products": [i.product for i in served.items],
            "draws": [Explored(id=served.id, user=served.user, product=i.product,
                               propensity=i.propensity, version=served.version,
                               ts=served.ts).model_dump_json()
                      for i in served.items if i.propensity is not None],
            "window": self._window, "bound": self._s.served_stream_max, "ttl": 31 * 24 * HOUR,
            "positions": POSITIONS, "explore_log": EXPLORE_LOG,
        }  # fmt: skip
        if served.arm is not None:
            a = arm_keys(self._prefix, served.arm)
            keys += [a.counters, a.users, a.latencies]
            rest.update(user=served.user, degraded=int(served.degraded is not None),
                        arm_ttl=EXPERIMENT_DAYS * 24 * HOUR, latencies=LATENCIES,
                        ms="" if ms is None else f"{ms:.3f}")  # fmt: skip
        record = ServedRecord.of(served).model_dump_json()
        await self._record_list(keys=keys, args=[served.model_dump_json(), record,
                                                 orjson.dumps(rest)])  # fmt: skip

    async def attribute(
        self, user: str, product: str, request_id: str | None
    ) -> tuple[Attribution, str | None]:
        """The event's attribution, and an error (the list belongs to another user) if any."""
        note = None
        if request_id is not None:
            raw = await self._r.get(self._record(request_id))
            if raw is not None:
                served = ServedRecord.parse(raw)
                if served.user != user:
                    return Attribution(), f"request {request_id!r} answered another user"
                return _within(request_id, served, product, "request_id"), None
            note = f"no served list {request_id!r} within the window: the latest list showing it"
        rid = await self._r.hget(self._shown_in(user), product)
        if rid is None:
            return Attribution(note=note), None
        raw = await self._r.get(self._record(text(rid)))
        if raw is None:
            return Attribution(note=note), None
        found = _within(text(rid), ServedRecord.parse(raw), product, "latest_list")
        return found.model_copy(update={"note": note}), None

    async def count(
        self,
        attribution: Attribution,
        kind: str,
        quantity: int,
        price: float | None,
        product: str | None = None,
        user: str | None = None,
    ) -> None:
        """Count an attributed event into its version's counters, and its arm's (by `user`, the
        experiment's unit)."""
        if attribution.version is None:
            return
        revenue = quantity * price if kind == "purchase" and price is not None else None
        if kind == "click" and attribution.explored and attribution.request_id is not None:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.sadd(self.explore_clicked_key, attribution.request_id)
                pipe.expire(self.explore_clicked_key, EXPERIMENT_DAYS * 24 * HOUR)
                await pipe.execute()
        if attribution.arm is not None and attribution.request_id is not None and user:
            arm = arm_keys(self._prefix, attribution.arm)
            item = f"{attribution.request_id}\x00{product}" if product is not None else ""
            await self._count_arm(
                keys=[arm.counters, f"{arm.lists}:{kind}", arm.items, arm.users],
                args=[
                    kind,
                    attribution.request_id,
                    item,
                    "" if revenue is None else revenue,
                    EXPERIMENT_DAYS * 24 * HOUR,
                    user,
                ],
            )
        counters = self._counters(attribution.version, int(time.time() // HOUR))
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hincrby(counters, kind, 1)
            if kind == "click" and attribution.position and attribution.position <= POSITIONS:
                pipe.hincrby(counters, f"click@{attribution.position}", 1)
            if revenue is not None:
                pipe.hincrbyfloat(counters, "revenue", revenue)
            pipe.expire(counters, 31 * 24 * HOUR)
            await pipe.execute()

    async def explored(self, n: int) -> list[tuple[Explored, bool]]:
        """The latest `n` exploration draws, each with whether it was clicked."""
        raw = await self._r.lrange(self.explored_key, 0, n - 1)
        draws = [Explored.model_validate_json(r) for r in raw]
        if not draws:
            return []
        clicked = await self._r.smismember(self.explore_clicked_key, [d.id for d in draws])
        return [(d, bool(c)) for d, c in zip(draws, clicked, strict=True)]

    async def metrics(self, window_hours: int, version: int | None) -> OnlineMetrics:
        now = int(time.time() // HOUR)
        if version is None:
            members = await self._r.smembers(self._versions)
            versions = sorted(int(v) for v in members)
        else:
            versions = [version]
        hours = range(now - window_hours + 1, now + 1)
        async with self._r.pipeline(transaction=False) as pipe:
            for v in versions:
                for h in hours:
                    pipe.hgetall(self._counters(v, h))
            raw = await pipe.execute()
        out = []
        for n, v in enumerate(versions):
            total: dict[str, float] = {}
            for bucket in raw[n * len(hours) : (n + 1) * len(hours)]:
                for key, value in bucket.items():
                    name = key.decode() if isinstance(key, bytes) else key
                    total[name] = total.get(name, 0.0) + float(value)
            out.append(_rates(v, total))
        return OnlineMetrics(window_hours=window_hours, versions=out)


def _within(request_id: str, served: ServedRecord, product: str, how: str) -> Attribution:
    position = served.products.index(product) + 1 if product in served.products else None
    return Attribution.model_validate(
        {
            "request_id": request_id,
            "version": served.version,
            "arm": served.arm,
            "position": position,
            "how": how,
            "explored": position is not None and position in served.explored,
        }
    )


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _rates(version: int, t: dict[str, float]) -> VersionMetrics:
    lists, items = t.get("lists", 0.0), t.get("items", 0.0)
    clicks, revenue = t.get("click", 0.0), t.get("revenue", 0.0)
    by_position = {
        p: r
        for p in range(1, POSITIONS + 1)
        if (r := _ratio(t.get(f"click@{p}", 0.0), t.get(f"shown@{p}", 0.0))) is not None
    }
    per_1000 = _ratio(revenue * 1000, lists)
    return VersionMetrics(
        version=version,
        lists=int(lists),
        items_shown=int(items),
        clicks=int(clicks),
        add_to_cart=int(t.get("add_to_cart", 0.0)),
        purchases=int(t.get("purchase", 0.0)),
        revenue=round(revenue, 6),
        ctr=_ratio(clicks, items),
        add_to_cart_rate=_ratio(t.get("add_to_cart", 0.0), lists),
        conversion_rate=_ratio(t.get("purchase", 0.0), lists),
        revenue_per_1000_lists=None if per_1000 is None or math.isnan(per_1000) else per_1000,
        ctr_by_position=by_position,
    )
