"""Keep the local stack's processes running: a process that dies is started again.

`recsys up` calls `Supervisor.tick` about twice a second. A process found dead is restarted at
once the first time, then after a back-off that doubles while it keeps dying (1 s, 2 s, 4 s …
up to `max_delay`), so a process that crashes at start does not spin the CPU. A process that
stays up for `stable_after` seconds is forgiven its earlier crashes. The other processes keep
running meanwhile: the gateway answers degraded (candidate order, or popular items) while a stage
is away, as with the compose restart policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.launcher.stack import Stack


@dataclass
class _Restarts:
    crashes: int = 0  # deaths since the process was last stable
    due: float | None = None  # when the pending restart happens
    started: float = 0.0


@dataclass
class Supervisor:
    stack: Stack
    log: Callable[[str], None]
    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _state: dict[str, _Restarts] = field(default_factory=dict)

    def delay(self, crashes: int) -> float:
        """Seconds to wait before restarting a process that has died `crashes` times in a row."""
        if crashes <= 1:
            return 0.0
        return float(min(self.max_delay, self.first_delay * 2 ** (crashes - 2)))

    def tick(self) -> None:
        now = self.clock()
        for name in list(self.stack.procs):
            proc = self.stack.procs[name]
            state = self._state.setdefault(name, _Restarts(started=now))
            if proc.poll() is None:
                if state.crashes and now - state.started >= self.stable_after:
                    state.crashes = 0
                continue
            if state.due is None:
                state.crashes += 1
                wait = self.delay(state.crashes)
                state.due = now + wait
                self.log(
                    f"{name} exited with code {proc.returncode}; restarting"
                    + (f" in {wait:.0f} s (crash {state.crashes} in a row)" if wait else "")
                    + f" (log: {self.stack.workdir}/logs/{name}.log)"
                )
            if now >= state.due:
                try:
                    self.stack.restart(name)
                except Exception as exc:  # e.g. Redis failing its first ping: try again later
                    state.crashes += 1
                    state.due = now + self.delay(state.crashes)
                    self.log(f"{name} failed to start again: {exc}")
                    continue
                state.due, state.started = None, now
                self.log(f"{name} restarted (pid {self.stack.procs[name].pid})")

    def run(self, stop: threading.Event, every: float = 0.5) -> None:
        """Tick until `stop` is set (the body of `recsys up`'s supervising thread)."""
        while not stop.wait(every):
            self.tick()
