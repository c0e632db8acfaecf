"""InFlightLimit: admits up to its limit, refuses the rest, and reports shedding sparingly."""

from __future__ import annotations

import pytest

from services.gateway.admission import InFlightLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admits_up_to_the_limit_then_refuses_and_counts() -> None:
    limit = InFlightLimit(2)
    assert limit.try_enter() and limit.try_enter()
    assert not limit.try_enter() and not limit.try_enter()
    assert (limit.in_flight, limit.shed) == (2, 2)  # refused requests take no place


def test_a_place_given_back_admits_the_next_request() -> None:
    limit = InFlightLimit(1)
    assert limit.try_enter()
    assert not limit.try_enter()
    limit.leave()
    assert limit.in_flight == 0
    assert limit.try_enter() and limit.in_flight == 1


def test_zero_means_no_limit() -> None:
    limit = InFlightLimit(0)
    assert all(limit.try_enter() for _ in range(10_000))
    assert (limit.in_flight, limit.shed) == (10_000, 0)


def test_leaving_more_often_than_entering_is_a_bug_not_a_bigger_limit() -> None:
    limit = InFlightLimit(1)
    with pytest.raises(RuntimeError):
        limit.leave()
    assert limit.try_enter()  # still exactly one place
    assert not limit.try_enter()


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        InFlightLimit(-1)


def test_shedding_is_reported_at_most_once_per_period_with_the_count_since() -> None:
    clock = Clock()
    limit = InFlightLimit(1, report_seconds=10.0, clock=clock)
    assert limit.try_enter()
    assert not limit.try_enter()
    assert limit.shed_to_report() == 1  # the first shed request is reported at once
    for _ in range(5):
        assert not limit.try_enter()
        assert limit.shed_to_report() == 0  # within the period: quiet
    clock.now += 10.0
    assert not limit.try_enter()
    assert limit.shed_to_report() == 6  # the five quiet ones and this one
