"""What the online loop (issue 25) adds to each `GET /recommend`, measured call by call.

Beyond answering, the gateway's request path does for the loop:
- `log_served` (services/gateway/answers.py): the served-list record, its attribution record
  and the version's counters, in one script call to Redis (shared/served_scripts.py);
- in a running experiment: the user's arm (a salted hash, `ExperimentWatch.arm_for`), the arm's
  counters and latency in that same call, and, once every `experiment_poll_seconds` (not
  per request), the guardrail check of `ExperimentWatch.check`.

Each step runs here, `calls` times, with the gateway's own functions on uvloop (as uvicorn runs
them) against the stack's Redis, under a key prefix of its own that is deleted afterwards. This
process's CPU time and the Redis server's over those calls, per answer, is the step's cost. The
guardrail check is spread over the answers of one poll period at the measured rate. `share`
divides by the whole stack's CPU per request from the same `make bench` run (every `make run`
process, the loop's own work included), which is what issue 25 bounds at 10 %.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from benchmarks.makerun import process_cpu_seconds
from services.gateway.answers import log_served
from services.gateway.experiment_watch import ExperimentWatch
from services.gateway.pipeline import Answer
from shared.experiments import ExperimentStore
from shared.observability import request_scope
from shared.schemas.experiments import ArmIn, ExperimentIn
from shared.schemas.serving import RecommendedItem
from shared.served import ServedLog
from shared.settings import CommonSettings

WARMUP = 50
CHECKS = 40  # guardrail checks timed (each reads the arms' counters and latest latencies)


def loop_cost(
    redis_url: str,
    redis_pid: int | None,
    items: Sequence[RecommendedItem],
    version: int,
    users: Sequence[str],
    calls: int = 5000,
    rate: float = 200.0,
) -> dict[str, Any]:
    """ms of CPU per answer of each step, this process (`gateway_ms`) and Redis (`redis_ms`),
    with the sums for an answer outside and inside an experiment."""
    try:
        import uvloop

        run: Callable[[Awaitable[dict[str, Any]]], dict[str, Any]] = uvloop.run  # type: ignore[assignment]
    except ImportError:  # pragma: no cover - uvicorn's default loop is uvloop where installed
        run = asyncio.run  # type: ignore[assignment]
    return run(_measure(redis_url, redis_pid, list(items), version, list(users), calls, rate))


async def _measure(
    redis_url: str,
    redis_pid: int | None,
    items: list[RecommendedItem],
    version: int,
    users: list[str],
    calls: int,
    rate: float,
) -> dict[str, Any]:
    prefix = f"bench-loop-{secrets.token_hex(4)}"
    client = aioredis.from_url(redis_url)
    common = CommonSettings(redis_url=redis_url, key_prefix=prefix)
    served = ServedLog(client, common)
    store = ExperimentStore(client, prefix)
    watch = ExperimentWatch(store, poll_seconds=1.0)
    answer = Answer(items, version)
    arms = [ArmIn(name="control", version=version, share=0.5),
            ArmIn(name="treatment", version=version, share=0.5)]  # fmt: skip
    steps: dict[str, dict[str, Any]] = {}

    async def timed(name: str, n: int, step: Callable[[int], Awaitable[Any]]) -> None:
        for i in range(min(WARMUP, n)):  # first calls: script loading, connection, caches
            await step(i)
        # Redis's own CPU only: a snapshot child forked meanwhile is not this step's work.
        cpu, redis_cpu = time.process_time(), process_cpu_seconds(redis_pid)
        for i in range(n):
            await step(i)
        own = (time.process_time() - cpu) * 1000 / n
        after = process_cpu_seconds(redis_pid)
        theirs = None
        if after is not None and redis_cpu is not None:
            theirs = (after - redis_cpu) * 1000 / n
        steps[name] = {"calls": n, "gateway_ms": own, "redis_ms": theirs}

    async def log(i: int, arm: str | None = None) -> None:
        with request_scope(f"bench-{i}-{secrets.token_hex(4)}"):
            await log_served(served, users[i % len(users)], answer, arm, 5.0 if arm else None)

    async def bucket(i: int) -> None:
        watch.arm_for(users[i % len(users)])

    async def in_arm(i: int) -> None:
        arm = watch.arm_for(users[i % len(users)])
        await log(i, None if arm is None else arm[0])

    try:
        await timed("log_served", calls, log)
        await timed("arm_outside_experiment", calls, bucket)  # the check for a running one
        watch.running = await store.create(ExperimentIn(name="bench", arms=arms))
        await timed("arm_in_experiment", calls, bucket)
        await timed("log_served_in_arm", calls, in_arm)  # bucketing included
        await timed("guardrail_check", CHECKS, lambda i: watch.check())
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        await client.aclose()
    per_answer = 1.0 / rate  # one check per second (poll_seconds 1), over `rate` answers
    check = steps["guardrail_check"]
    outside = {k: (steps["log_served"][k] or 0.0) + (steps["arm_outside_experiment"][k] or 0.0)
               for k in ("gateway_ms", "redis_ms")}  # fmt: skip
    inside = {k: (steps["log_served_in_arm"][k] or 0.0) + (check[k] or 0.0) * per_answer
              for k in ("gateway_ms", "redis_ms")}  # fmt: skip
    return {
        "calls": calls,
        "rate": rate,
        "items": len(items),
        "steps": steps,
        "per_answer": {
            "no_experiment": {**outside, "total_ms": sum(outside.values())},
            "experiment": {**inside, "total_ms": sum(inside.values())},
        },
    }


def with_share(cost: dict[str, Any], stack_cpu_ms: float | None) -> dict[str, Any]:
    """`cost` with each case's share of the stack's CPU per request (None when not measured)."""
    out = {**cost, "stack_cpu_ms_per_request": stack_cpu_ms}
    for case in out["per_answer"].values():
        case["share"] = case["total_ms"] / stack_cpu_ms if stack_cpu_ms else None
    return out
