"""Admission control for /recommend: how many requests are inside the two-stage pipeline.

Past the stack's capacity, admitting every request only lengthens the queues in front of the
candidate and ranker services until every answer is slow (at 400 req/s on two cores: p50 690 ms,
a fifth to a quarter of the requests past a 2 s client deadline). With a bound on the requests
between the candidate call and the ranker's answer, the excess is answered at once from the
cached popular list (`X-Degraded: overload`) and the admitted requests keep a bounded latency.

One instance per process, used from the event loop only: a plain int, no locking.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class InFlightLimit:
    """Requests in the candidate -> ranker pipeline now, and how many may be (0: no limit)."""

    def __init__(
        self,
        limit: int,
        report_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0 (0: no limit)")
        self.limit = limit
        self.in_flight = 0
        self.shed = 0  # requests refused since the process started
        self._report_seconds = report_seconds
        self._clock = clock
        self._reported_at = -math.inf
        self._reported_shed = 0

    def try_enter(self) -> bool:
        """Admit a request (True) or refuse it because the pipeline is full (False).

        An admitted request must call `leave` exactly once, whatever happens to it: in a
        `finally`, so that errors and cancelled requests give their place back too."""
        if self.limit and self.in_flight >= self.limit:
            self.shed += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        if self.in_flight <= 0:  # a bug that would silently raise the limit: fail loudly
            raise RuntimeError("leave() without a matching try_enter()")
        self.in_flight -= 1

    def shed_to_report(self) -> int:
        """Requests shed since the last report if one is due, else 0.

        Under overload a log line per shed request would spend CPU the stack does not have:
        one line per `report_seconds` at most says the same."""
        now = self._clock()
        if now - self._reported_at < self._report_seconds:
            return 0
        count = self.shed - self._reported_shed
        self._reported_at, self._reported_shed = now, self.shed
        return count
