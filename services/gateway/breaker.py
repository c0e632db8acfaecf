"""A circuit breaker per downstream stage, so a dead service is not called on every request.

closed     calls go through; `failures` failures in a row open the breaker.
open       calls are refused at once (the caller falls back) for `reset_seconds`.
half-open  then one probe call goes through: success closes the breaker, failure opens it again.
           A probe that never reports (its request was cancelled) is replaced after
           `reset_seconds`, so the breaker cannot stay stuck half-open.

One instance per stage and process, used from the event loop only: no locking needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from shared.observability import BREAKER_OPENED, BREAKER_STATE

State = Literal["closed", "open", "half_open"]
_GAUGE: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failures: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or reset_seconds <= 0:
            raise ValueError("failures must be >= 1 and reset_seconds > 0")
        self.name = name
        self.failures = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: State = "closed"
        self._consecutive = 0
        self._since = 0.0  # when it opened, or when the current probe started
        BREAKER_STATE.labels(name).set(0)

    @property
    def state(self) -> State:
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open: whether this call is the probe)."""
        if self._state == "closed":
            return True
        if self._clock() - self._since < self.reset_seconds:
            return False
        self._set("half_open")  # from open, or a stale probe in half-open: probe again
        self._since = self._clock()
        return True

    def success(self) -> None:
        self._consecutive = 0
        if self._state != "closed":
            self._set("closed")

    def failure(self) -> None:
        self._consecutive += 1
        if self._state == "half_open" or (
            self._state == "closed" and self._consecutive >= self.failures
        ):
            self._set("open")
            self._since = self._clock()
            BREAKER_OPENED.labels(self.name).inc()

    def _set(self, state: State) -> None:
        self._state = state
        BREAKER_STATE.labels(self.name).set(_GAUGE[state])
