"""A/B experiments: stored in Redis, users bucketed by a stable salted hash, counted per arm,
judged by an always-valid test, stopped by their guardrails.

One experiment runs at a time (the whole traffic is its slice). Its arms' versions are held: the
registry's retention does not delete them while it runs. Every served list of a user in the
experiment carries the arm as "<experiment>/<arm>"; the served-list log counts it into the arm's
counters (`arm_keys`), and attributed events count there too, so the report reads a handful of
Redis hashes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from shared.redis_conn import text
from shared.registry import held_versions_key
from shared.schemas.experiments import (
    ArmIn,
    ArmReport,
    Difference,
    Experiment,
    ExperimentIn,
    ExperimentReport,
)
from shared.sequential import UserSums, between, rate, ratio

LATENCIES = 1000  # an arm's p99 is over its last this many answers


@dataclass(frozen=True)
class ArmKeys:
    counters: str  # hash: lists, items, degraded, click, add_to_cart, purchase, revenue, ...
    latencies: str  # list: the last LATENCIES answer times in ms
    lists: str  # set prefix: lists that had an event of a kind (`<lists>:<kind>`)
    items: str  # set: (list, product) pairs clicked (CTR counts an item once)
    users: str  # hash: per-user counts (shared/served.py explains the fields)


def arm_keys(prefix: str, arm: str) -> ArmKeys:
    """Key names of an arm ("<experiment>/<arm>")."""
    base = f"{prefix}:exp:{arm}"
    return ArmKeys(f"{base}:n", f"{base}:ms", f"{base}:lists", f"{base}:items", f"{base}:users")


def arm_id(experiment: str, arm: str) -> str:
    return f"{experiment}/{arm}"


def bucket(salt: str, user: str) -> float:
    """The user's place in [0, 1): the same for the whole experiment, independent across
    experiments (each has its own salt)."""
    digest = hashlib.sha256(f"{salt}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, user: str) -> ArmIn:
    """The arm serving `user`: arms own consecutive ranges of [0, 1) as wide as their shares."""
    at, edge = bucket(experiment.salt, user), 0.0
    for arm in experiment.arms:
        edge += arm.share
        if at < edge:
            return arm
    return experiment.arms[-1]  # shares sum to 1 within rounding


class ExperimentError(Exception):
    """A request the stored experiments refuse; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ExperimentStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._r: Any = client
        self._p = prefix
        self._all = f"{prefix}:experiments"
        self._running = f"{prefix}:experiments:running"
        self._held = held_versions_key(prefix)
        self._narrow = self._r.register_script(_NARROW)

    async def create(self, asked: ExperimentIn) -> Experiment:
        """Store and start it; 409 when the name is taken or another one runs."""
        exp = Experiment(**asked.model_dump(), salt=secrets.token_hex(8), created=time.time())
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._all, self._running)
                    if await pipe.hexists(self._all, exp.name):
                        raise ExperimentError(409, f"an experiment named {exp.name!r} exists")
                    if (running := await pipe.get(self._running)) is not None:
                        raise ExperimentError(
                            409, f"experiment {text(running)!r} is running: stop it first"
                        )
                    pipe.multi()
                    pipe.hset(self._all, exp.name, exp.model_dump_json())
                    pipe.set(self._running, exp.name)
                    pipe.sadd(self._held, *{a.version for a in exp.arms})
                    await pipe.execute()
                    return exp
                except WatchError:
                    continue

    async def get(self, name: str) -> Experiment | None:
        raw = await self._r.hget(self._all, name)
        return None if raw is None else Experiment.model_validate_json(raw)

    async def all(self) -> list[Experiment]:
        raw = await self._r.hvals(self._all)
        return sorted((Experiment.model_validate_json(r) for r in raw), key=lambda e: e.created)

    async def running(self) -> Experiment | None:
        name = await self._r.get(self._running)
        return None if name is None else await self.get(text(name))

    async def end(
        self,
        name: str,
        reason: str,
        promoted: str | None = None,
        by: Literal["guardrail", "stop", "promote"] = "stop",
    ) -> tuple[Experiment, bool]:
        """Stop it (or mark it promoted): the experiment, and whether this call ended it (False:
        it had ended already, e.g. a guardrail got there first). 404 when unknown."""
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._all, self._running)
                    raw = await pipe.hget(self._all, name)
                    if raw is None:
                        raise ExperimentError(404, f"no experiment named {name!r}")
                    exp = Experiment.model_validate_json(raw)
                    if exp.status != "running":
                        return exp, False
                    status = "promoted" if promoted is not None else "stopped"
                    update = {"status": status, "ended": time.time(), "reason": reason,
                              "promoted": promoted,
                              "ended_by": "promote" if promoted is not None else by}  # fmt: skip
                    exp = exp.model_copy(update=update)
                    pipe.multi()
                    pipe.hset(self._all, name, exp.model_dump_json())
                    pipe.delete(self._running)
                    pipe.delete(self._held)
                    await pipe.execute()
                    return exp, True
                except WatchError:
                    continue

    async def report(self, exp: Experiment) -> ExperimentReport:
        """Counts and rates per arm, each arm against the control, and the verdict."""
        keys = [arm_keys(self._p, arm_id(exp.name, a.name)) for a in exp.arms]
        async with self._r.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.hgetall(k.counters)
                pipe.lrange(k.latencies, 0, LATENCIES - 1)
            raw = await pipe.execute()
        counters = [{text(k): float(v) for k, v in c.items()} for c in raw[::2]]
        latencies = [[float(text(x)) for x in ms] for ms in raw[1::2]]
        report = summarize(exp, counters, latencies)
        if exp.status != "running":  # ended: the intervals as they last stood
            return await self._narrowed(exp, report, update=False)
        return await self._narrowed(exp, report, update=True)

    async def _narrowed(
        self, exp: Experiment, report: ExperimentReport, update: bool
    ) -> ExperimentReport:
        """The intervals intersected with every earlier look's (an intersection of confidence
        sequences is one too): a verdict, once reached, does not come and go as data arrive."""
        key = f"{self._p}:exp:{exp.name}:bounds"
        fresh = {a.name: a.vs_control for a in report.arms if a.vs_control is not None}
        if update and fresh:
            args: list[str | float] = []
            for name, fresh_d in fresh.items():
                args += [name, fresh_d.low, fresh_d.high]
            await self._narrow(keys=[key], args=args)
        raw = {text(k): float(v) for k, v in (await self._r.hgetall(key)).items()}
        arms = []
        for arm in report.arms:
            d = arm.vs_control
            if d is not None and f"low:{arm.name}" in raw:
                low, high = raw[f"low:{arm.name}"], raw[f"high:{arm.name}"]
                if low <= high:  # an empty intersection: the estimates moved; the latest holds
                    d = d.model_copy(update={"low": max(low, d.low), "high": min(high, d.high)})
            arms.append(arm.model_copy(update={"vs_control": d}))
        verdict, winner = _verdict(exp, arms)
        return report.model_copy(update={"arms": arms, "verdict": verdict, "winner": winner})


def summarize(
    exp: Experiment, counters: list[dict[str, float]], latencies: list[list[float]]
) -> ExperimentReport:
    """The report from each arm's counters (what `ServedLog` counts) and latest answer times."""
    arms = [_arm(a, c, ms, exp) for a, c, ms in zip(exp.arms, counters, latencies, strict=True)]
    arms = _compared(exp, arms, [_sums(c, exp) for c in counters])
    verdict, winner = _verdict(exp, arms)
    return ExperimentReport(experiment=exp, arms=arms, verdict=verdict, winner=winner)


def _counts(c: dict[str, float], exp: Experiment) -> tuple[int, int]:
    """The primary metric's (successes, trials) from an arm's counters."""
    s = _sums(c, exp)
    return int(s.y), int(s.n)


def _sums(c: dict[str, float], exp: Experiment) -> UserSums:
    """The primary metric's per-user sums (shared/served.py keeps them)."""
    users = int(c.get("users", 0.0))
    if exp.primary_metric == "ctr":
        return UserSums(users, c.get("click_items", 0.0), c.get("items", 0.0),
                        c.get("z2", 0.0), c.get("m2", 0.0), c.get("mz", 0.0))  # fmt: skip
    kind = {"click_rate": "click", "add_to_cart_rate": "add_to_cart",
            "conversion_rate": "purchase"}[exp.primary_metric]  # fmt: skip
    y, ny = c.get(f"{kind}_lists", 0.0), c.get(f"ny:{kind}", 0.0)
    return UserSums(users, y, c.get("lists", 0.0), c.get(f"y2:{kind}", 0.0), c.get("n2", 0.0), ny)


def _arm(arm: ArmIn, c: dict[str, float], latencies: list[float], exp: Experiment) -> ArmReport:
    ms = np.array(latencies, dtype=np.float64)
    n = {k: int(c.get(k, 0.0)) for k in ("lists", "items", "degraded", "click", "add_to_cart",
                                          "purchase", "click_items")}  # fmt: skip
    successes, trials = _counts(c, exp)
    return ArmReport(
        name=arm.name,
        version=arm.version,
        share=arm.share,
        lists=n["lists"],
        items_shown=n["items"],
        degraded=n["degraded"],
        clicks=n["click"],
        add_to_cart=n["add_to_cart"],
        purchases=n["purchase"],
        revenue=round(c.get("revenue", 0.0), 6),
        lists_clicked=int(c.get("click_lists", 0.0)),
        lists_with_cart=int(c.get("add_to_cart_lists", 0.0)),
        lists_converted=int(c.get("purchase_lists", 0.0)),
        primary=rate(successes, trials),
        p99_ms=float(np.percentile(ms, 99)) if len(ms) else None,
    )


def _compared(exp: Experiment, arms: list[ArmReport], sums: list[UserSums]) -> list[ArmReport]:
    """Each treatment arm's difference from the control, users as the unit (they are what is
    bucketed); the level split among the comparisons (Bonferroni) so the verdict's error rate
    holds for the experiment as a whole."""
    alpha = exp.alpha / max(1, len(arms) - 1)
    control, out = ratio(sums[0]), [arms[0]]
    for arm, s in zip(arms[1:], sums[1:], strict=True):
        treated = ratio(s)
        vs = None
        if control is not None and treated is not None:
            d = between(treated[0], treated[1], control[0], control[1], alpha, exp.mixing_sd)
            vs = Difference(estimate=d.estimate, low=d.low, high=d.high)
        out.append(arm.model_copy(update={"vs_control": vs}))
    return out


def _verdict(exp: Experiment, arms: list[ArmReport]) -> tuple[str, str | None]:
    metric, control = exp.primary_metric, arms[0]
    least = exp.guardrails.min_lists
    if any(a.lists < least for a in arms):
        return f"collecting: every arm needs {least} lists before a verdict", None
    better = [a for a in arms[1:] if a.vs_control is not None and a.vs_control.low > 0]
    worse = [a for a in arms[1:] if a.vs_control is not None and a.vs_control.high < 0]
    if better:
        best = max(better, key=lambda a: a.vs_control.estimate if a.vs_control else 0.0)
        others = [a for a in better if a is not best]
        if not others:
            return f"{best.name} beats control {control.name} on {metric}", best.name
        return f"{', '.join(a.name for a in better)} beat control {control.name} on {metric}", None
    if len(worse) == len(arms) - 1:
        return f"control {control.name} beats every other arm on {metric}", control.name
    if worse:
        return f"{', '.join(a.name for a in worse)} worse than control on {metric}", None
    return f"no difference on {metric} yet (the interval still covers 0)", None


def breached(report: ExperimentReport) -> str | None:
    """Why the experiment must stop now, or None. Only treatment arms are judged (the control is
    what traffic returns to) and only once they served `min_lists` answers."""
    g, control = report.experiment.guardrails, report.arms[0]
    for arm in report.arms[1:]:
        if arm.lists < g.min_lists:
            continue
        share = arm.degraded / arm.lists
        if g.max_degraded_rate is not None and share > g.max_degraded_rate:
            return (f"guardrail max_degraded_rate: arm {arm.name} degraded {share:.1%} of "
                    f"{arm.lists} answers (limit {g.max_degraded_rate:.1%})")  # fmt: skip
        if g.max_p99_ms is not None and arm.p99_ms is not None and arm.p99_ms > g.max_p99_ms:
            return (f"guardrail max_p99_ms: arm {arm.name} p99 {arm.p99_ms:.1f} ms "
                    f"(limit {g.max_p99_ms:g} ms)")  # fmt: skip
        vs, base, drop = arm.vs_control, control.primary, g.max_primary_drop
        if drop is not None and vs is not None and base is not None and vs.high < -drop * base:
            return (f"guardrail max_primary_drop: arm {arm.name} "
                    f"{report.experiment.primary_metric} lower than control by "
                    f"{-vs.high:.4f} at least (limit {drop:.0%} of {base:.4f})")  # fmt: skip
    return None


# KEYS: the experiment's bounds hash; ARGV: (arm, low, high) triples. Each arm's bounds become
# the intersection of their stored value and the new one.
_NARROW = """
for i = 1, #ARGV, 3 do
  local arm, low, high = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local old_low = redis.call('HGET', KEYS[1], 'low:' .. arm)
  local old_high = redis.call('HGET', KEYS[1], 'high:' .. arm)
  if old_low then low = math.max(low, tonumber(old_low)) end
  if old_high then high = math.min(high, tonumber(old_high)) end
  redis.call('HSET', KEYS[1], 'low:' .. arm, tostring(low))
  redis.call('HSET', KEYS[1], 'high:' .. arm, tostring(high))
end
return 1
"""
