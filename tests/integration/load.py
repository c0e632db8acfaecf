"""Threads requesting /recommend in a loop, and waiting for a condition: for tests that break
processes under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Load:
    """Clients requesting /recommend in a loop from threads until stopped."""

    url: str
    clients: int = 4
    results: list[tuple[float, int, str | None, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(self.clients):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, n: int) -> None:
        with httpx.Client(timeout=10) as http:
            i = 0
            while not self._stop.is_set():
                i += 1
                start = time.monotonic()
                try:
                    r = http.get(f"{self.url}/recommend", params={"user": f"U{n * 37 + i % 50}"})
                    status, degraded = r.status_code, r.headers.get("X-Degraded")
                except httpx.HTTPError:
                    status, degraded = 0, None  # the gateway itself did not answer
                self.results.append((start, status, degraded, time.monotonic() - start))

    def stop(self) -> Load:
        self._stop.set()
        for t in self._threads:
            t.join()
        return self

    def summary(self) -> dict[str, float]:
        latencies = sorted(r[3] for r in self.results)
        return {
            "requests": len(self.results),
            "non_200": sum(1 for r in self.results if r[1] != 200),
            "5xx_or_no_answer": sum(1 for r in self.results if r[1] >= 500 or r[1] == 0),
            "degraded": sum(1 for r in self.results if r[2]),
            "degraded_ranker": sum(1 for r in self.results if r[2] == "ranker"),
            "degraded_candidate": sum(1 for r in self.results if r[2] == "candidate"),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
            "max_ms": round(1000 * latencies[-1], 1),
        }


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Seconds until `check()` is true; fails the test after `timeout`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout}s"
        time.sleep(step)
    return time.monotonic() - start
