"""CircuitBreaker: opens after N failures in a row, refuses for T seconds, then one probe."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from services.gateway.breaker import CircuitBreaker


def state(breaker: CircuitBreaker) -> str:
    """The state, read afresh (not narrowed by earlier asserts)."""
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(name: str = "test-stage") -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(name, failures=3, reset_seconds=5.0, clock=clock), clock


def test_stays_closed_below_the_threshold_and_successes_reset_the_count() -> None:
    b, _ = _breaker()
    for _ in range(5):
        b.failure()
        b.failure()
        b.success()  # two failures, then a success: never three in a row
    assert state(b) == "closed" and b.allow()


def test_opens_after_n_consecutive_failures_and_refuses_calls() -> None:
    b, clock = _breaker()
    for _ in range(3):
        assert b.allow()
        b.failure()
    assert state(b) == "open"
    clock.now += 4.9
    assert not b.allow()


def test_half_open_lets_one_probe_through_and_success_closes() -> None:
    b, clock = _breaker()
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    assert b.allow()  # the probe
    assert state(b) == "half_open"
    assert not b.allow()  # only one probe at a time
    b.success()
    assert state(b) == "closed" and b.allow()


def test_failed_probe_opens_again_for_another_period() -> None:
    b, clock = _breaker()
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    assert b.allow()
    b.failure()
    assert state(b) == "open"
    clock.now += 4.0
    assert not b.allow()
    clock.now += 1.0
    assert b.allow()


def test_a_probe_that_never_reports_is_replaced() -> None:
    b, clock = _breaker()
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    assert b.allow()  # this probe's request is cancelled: neither success nor failure
    clock.now += 5.0
    assert b.allow()  # a new probe, not stuck half-open forever


def test_state_and_openings_are_exported_as_metrics() -> None:
    b, clock = _breaker("metrics-stage")

    def sample(name: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"stage": "metrics-stage"})

    assert sample("recsys_breaker_state") == 0
    for _ in range(3):
        b.failure()
    assert sample("recsys_breaker_state") == 2
    assert sample("recsys_breaker_opened_total") == 1
    clock.now += 5.0
    b.allow()
    assert sample("recsys_breaker_state") == 1
    b.success()
    assert sample("recsys_breaker_state") == 0


@pytest.mark.parametrize(("failures", "reset"), [(0, 1.0), (1, 0.0)])
def test_rejects_meaningless_settings(failures: int, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failures, reset)
