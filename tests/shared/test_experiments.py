"""Experiments on a real Redis: bucketing (shares, stability, independence), one running at a
time, the stop as compare-and-set, counts per arm from the served-list log, guardrails."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from shared.experiments import (
    ExperimentError,
    ExperimentStore,
    arm_id,
    arm_keys,
    assign,
    breached,
    summarize,
)
from shared.redis_conn import async_client
from shared.registry import held_versions_key
from shared.schemas.experiments import Experiment, ExperimentIn, ExperimentReport
from shared.served import ServedItem, ServedList, ServedLog
from shared.settings import CommonSettings


def _asked(name: str = "e1", shares: tuple[float, ...] = (0.5, 0.5), **extra: Any) -> ExperimentIn:
    arms = [{"name": f"a{i}", "version": i + 1, "share": s} for i, s in enumerate(shares)]
    return ExperimentIn.model_validate({"name": name, "arms": arms, **extra})


def _exp(shares: tuple[float, ...], salt: str = "s") -> Experiment:
    return Experiment(**_asked(shares=shares).model_dump(), salt=salt, created=0.0)


def test_ten_thousand_users_split_by_the_shares_and_keep_their_arm() -> None:
    exp = _exp((0.2, 0.3, 0.5))
    users = [f"user-{i}@shop.example" for i in range(10_000)]
    arms = {u: assign(exp, u).name for u in users}
    split = Counter(arms.values())
    for arm in exp.arms:
        assert abs(split[arm.name] / len(users) - arm.share) <= 0.02, split
    assert all(assign(exp, u).name == arms[u] for u in users)  # stable
    # another experiment (another salt) buckets independently: about half change arm
    other = _exp((0.2, 0.3, 0.5), salt="t")
    moved = sum(assign(other, u).name != arms[u] for u in users) / len(users)
    assert 0.5 < moved < 0.72  # 1 - (0.2^2 + 0.3^2 + 0.5^2) = 0.62 expected


def test_bad_experiments_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match=r"sum to 0\.9"):
        _asked(shares=(0.5, 0.4))
    with pytest.raises(ValidationError, match="repeat"):
        ExperimentIn.model_validate(
            {"name": "x", "arms": [{"name": "a", "version": 1, "share": 0.5}] * 2}
        )
    with pytest.raises(ValidationError, match="at least 2"):
        _asked(shares=(1.0,))


def _run(
    redis_url: str, scenario: Callable[[ExperimentStore, ServedLog, str], Awaitable[None]]
) -> None:
    prefix = f"exp-{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        client = async_client(redis_url)
        try:
            log = ServedLog(client, CommonSettings(redis_url=redis_url, key_prefix=prefix))
            await scenario(ExperimentStore(client, prefix), log, prefix)
        finally:
            await client.aclose()

    asyncio.run(go())


def test_one_runs_at_a_time_names_are_unique_and_a_stop_happens_once(redis_url: str) -> None:
    async def scenario(store: ExperimentStore, _: ServedLog, prefix: str) -> None:
        exp = await store.create(_asked("first"))
        assert (await store.running()) == exp
        assert {int(v) for v in await store._r.smembers(held_versions_key(prefix))} == {1, 2}
        with pytest.raises(ExperimentError, match="'first' is running") as busy:
            await store.create(_asked("second"))
        assert busy.value.status == 409
        ends = await asyncio.gather(*(store.end("first", f"stop {i}") for i in range(5)))
        assert sum(by_me for _, by_me in ends) == 1  # one caller ended it; the rest saw it ended
        assert {(e.status, e.ended_by) for e, _ in ends} == {("stopped", "stop")}
        assert await store.running() is None
        assert not await store._r.exists(held_versions_key(prefix))
        with pytest.raises(ExperimentError, match="exists") as taken:
            await store.create(_asked("first"))
        assert taken.value.status == 409
        with pytest.raises(ExperimentError) as unknown:
            await store.end("nope", "x")
        assert unknown.value.status == 404

    _run(redis_url, scenario)


def _served(rid: str, user: str, arm: str, n: int = 3, degraded: str | None = None) -> ServedList:
    items = [ServedItem(product=f"P{i}", position=i + 1, score=1.0, reason="r") for i in range(n)]
    return ServedList(id=rid, user=user, ts=time.time(), version=1, arm=arm, degraded=degraded,
                      items=items)  # fmt: skip


def test_counts_per_arm_are_exact_and_a_list_converts_once(redis_url: str) -> None:
    async def scenario(store: ExperimentStore, log: ServedLog, _: str) -> None:
        exp = await store.create(_asked("counts", guardrails={"min_lists": 1}))
        a0, a1 = arm_id("counts", "a0"), arm_id("counts", "a1")
        await log.record(_served("r1", "u1", a0), ms=5.0)
        await log.record(_served("r2", "u2", a1, degraded="ranker"), ms=50.0)
        await log.record(_served("r3", "u3", a1), ms=7.0)
        await log.record(_served("r4", "u4", a0), ms=6.0)
        for product, kind in [("P0", "click"), ("P0", "click"), ("P1", "click"),
                              ("P1", "purchase")]:  # fmt: skip
            at, _err = await log.attribute("u2", product, "r2")
            assert at.arm == a1
            await log.count(at, kind, 2, 10.0, product, "u2")
        report = await store.report(exp)
        control, treated = report.arms
        assert (control.lists, control.items_shown, control.clicks) == (2, 6, 0)
        assert (treated.lists, treated.items_shown, treated.degraded) == (2, 6, 1)
        assert (treated.clicks, treated.lists_clicked, treated.purchases) == (3, 1, 1)
        assert treated.lists_converted == 1 and treated.revenue == 20.0
        assert treated.primary == 0.5 and control.primary == 0.0  # click_rate: lists clicked
        assert treated.p99_ms is not None and 7.0 < treated.p99_ms <= 50.0
        assert treated.vs_control is not None and treated.vs_control.estimate == 0.5
        assert control.vs_control is None
        # a degraded share of 1/2 over the 5 % default guardrail, judged from 1 list on
        assert breached(report) is not None and "max_degraded_rate" in str(breached(report))

    _run(redis_url, scenario)


def test_a_slow_or_worse_arm_breaches_its_guardrail() -> None:
    guards = {"max_p99_ms": 100, "max_primary_drop": 0.1, "min_lists": 100}
    exp = Experiment(**_asked(guardrails=guards).model_dump(), salt="s", created=0.0)

    def counters(lists: int, clicked: int) -> dict[str, float]:
        """`lists` lists of as many users (one each), `clicked` of them clicked."""
        return {"users": lists, "lists": lists, "items": lists, "click": clicked,
                "click_lists": clicked, "n2": lists, "y2:click": clicked,
                "ny:click": clicked}  # fmt: skip

    def report(p99: float, lists: int, clicked_b: int) -> ExperimentReport:
        both = [counters(lists, lists // 5), counters(lists, clicked_b)]
        return summarize(exp, both, [[10.0] * 100, [p99] * 100])

    assert breached(report(p99=150.0, lists=99, clicked_b=20)) is None  # too few lists yet
    assert "max_p99_ms" in str(breached(report(p99=150.0, lists=100, clicked_b=20)))
    fine = report(p99=20.0, lists=10_000, clicked_b=2_000)
    assert breached(fine) is None and fine.winner is None and "no difference" in fine.verdict
    worse = report(p99=20.0, lists=10_000, clicked_b=1_000)
    assert "max_primary_drop" in str(breached(worse))
    assert worse.winner == "a0" and "control a0 beats" in worse.verdict
    better = report(p99=20.0, lists=10_000, clicked_b=3_000)
    assert breached(better) is None and better.winner == "a1"
    assert "a1 beats control a0" in better.verdict
    assert "collecting" in report(p99=20.0, lists=50, clicked_b=40).verdict


def test_per_user_sums_are_those_of_the_final_counts(redis_url: str) -> None:
    """Whatever the order of lists and clicks, the arm's sums are sum(n^2), sum(y^2), sum(n y)
    of each user's final counts: what the users-as-unit variance reads."""

    async def scenario(store: ExperimentStore, log: ServedLog, prefix: str) -> None:
        await store.create(_asked("sums"))
        arm = arm_id("sums", "a1")
        await log.record(_served("s1", "v1", arm, n=2))
        await log.record(_served("s2", "v1", arm, n=2))
        for _ in range(2):  # the same list clicked twice counts once
            at, _err = await log.attribute("v1", "P0", "s1")
            await log.count(at, "click", 1, None, "P0", "v1")
        await log.record(_served("s3", "v1", arm, n=2))
        at, _err = await log.attribute("v1", "P1", "s3")
        await log.count(at, "click", 1, None, "P1", "v1")
        await log.record(_served("s4", "v2", arm, n=2))  # another user, never clicks
        raw = await store._r.hgetall(arm_keys(prefix, arm).counters)
        c = {k.decode(): float(v) for k, v in raw.items()}
        # v1: n=3 lists, y=2 clicked lists, m=6 items, z=2 clicked items; v2: n=1, m=2
        assert (c["users"], c["lists"], c["click_lists"]) == (2, 4, 2)
        assert (c["n2"], c["y2:click"], c["ny:click"]) == (3 * 3 + 1, 2 * 2, 3 * 2)
        assert (c["m2"], c["z2"], c["mz"]) == (6 * 6 + 2 * 2, 2 * 2, 6 * 2)

    _run(redis_url, scenario)


def test_an_interval_is_the_intersection_of_every_look(redis_url: str) -> None:
    async def scenario(store: ExperimentStore, log: ServedLog, prefix: str) -> None:
        exp = await store.create(_asked("looks", guardrails={"min_lists": 1}))
        for n in range(6):
            for arm in ("a0", "a1"):
                user, rid = f"{arm}-{n}", f"{arm}-r{n}"
                await log.record(_served(rid, user, arm_id("looks", arm)))
                if arm == "a1" or n == 0:
                    at, _err = await log.attribute(user, "P0", rid)
                    await log.count(at, "click", 1, None, "P0", user)
        first = (await store.report(exp)).arms[1].vs_control
        assert first is not None and first.low < 0 < first.high  # 6 users: no verdict yet
        # an earlier look that had excluded 0 (as if the data had pointed that way then)
        await store._r.hset(f"{prefix}:exp:looks:bounds", mapping={"low:a1": 0.01})
        again = await store.report(exp)
        d = again.arms[1].vs_control
        assert d is not None and d.low == 0.01 and d.high == first.high
        assert again.winner == "a1"  # once reached, the verdict stays

    _run(redis_url, scenario)


def test_erasing_a_user_removes_their_counts_from_every_arm(redis_url: str) -> None:
    from shared.users import UserStore

    async def scenario(store: ExperimentStore, log: ServedLog, prefix: str) -> None:
        await store.create(_asked("erase"))
        arm = arm_id("erase", "a1")
        for user, rid in (("gone@x.example", "e1"), ("stays", "e2")):
            await log.record(_served(rid, user, arm))
            at, _err = await log.attribute(user, "P0", rid)
            await log.count(at, "click", 1, None, "P0", user)
            await log.count(at, "view", 1, None, "P0", user)
        users_key = arm_keys(prefix, arm).users
        await UserStore(store._r, prefix).erase("gone@x.example")
        left = {k.decode() for k in await store._r.hkeys(users_key)}
        assert left and all(f.startswith("stays\x00") for f in left)

    _run(redis_url, scenario)
