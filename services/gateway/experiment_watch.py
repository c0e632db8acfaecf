"""The running experiment in this gateway's memory, and its guardrails watched.

Every `experiment_poll_seconds` the gateway reads which experiment runs (bucketing a request is
then a hash, no Redis round trip) and judges its guardrails on the arms' counters. A breach
stops it: traffic returns to the current version at the next read of every gateway, and the
reason is logged, counted (`recsys_experiment_ends_total{cause="guardrail"}`) and stored on the
experiment (its report and the UI show it). Several gateways may judge at once: the stop is a
compare-and-set, one of them records it.
"""

from __future__ import annotations

import asyncio
import logging

import redis

from shared.experiments import ExperimentStore, arm_id, assign, breached
from shared.observability import EXPERIMENT_ENDS
from shared.redis_conn import stop_if_cancelled
from shared.schemas.experiments import Experiment

log = logging.getLogger(__name__)


class ExperimentWatch:
    def __init__(self, store: ExperimentStore, poll_seconds: float) -> None:
        self.store = store
        self.running: Experiment | None = None
        self._poll = poll_seconds

    def arm_for(self, user: str) -> tuple[str, int] | None:
        """("<experiment>/<arm>", version) serving `user`, or None outside any experiment."""
        exp = self.running
        if exp is None:
            return None
        arm = assign(exp, user)
        return arm_id(exp.name, arm.name), arm.version

    async def check(self) -> None:
        """Read the running experiment; stop it when a guardrail is breached."""
        exp = await self.store.running()
        if exp is not None:
            reason = breached(await self.store.report(exp))
            if reason is not None:
                ended, by_me = await self.store.end(exp.name, reason, by="guardrail")
                if by_me:
                    log.warning("experiment %s stopped: %s", exp.name, reason)
                    EXPERIMENT_ENDS.labels(exp.name, "guardrail").inc()
                exp = None if ended.status != "running" else ended
        self.running = exp

    async def run(self) -> None:
        while True:
            stop_if_cancelled()
            try:
                await self.check()
            except (redis.RedisError, OSError) as exc:
                stop_if_cancelled()
                # Redis away: the last known experiment keeps its users in their arms.
                log.info("experiment state not read: %s", exc)
            await asyncio.sleep(self._poll)
