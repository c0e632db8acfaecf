"""Serving statistics parsed from real Prometheus exposition text."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shared.schemas.serving import ServiceStats
from shared.stats import answer_cache, histogram_quantile, service_stats, unreachable, window

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def _exposition(
    latencies: dict[tuple[str, str, str], list[float]],
    versions: dict[str, int] | None = None,
    degraded: dict[tuple[str, str], int] | None = None,
) -> str:
    """Metrics text as the services expose it (same names, labels and buckets)."""
    registry = CollectorRegistry()
    names = ["service", "route", "status"]
    latency = Histogram("recsys_request_seconds", "", names, buckets=BUCKETS, registry=registry)
    version = Gauge("recsys_model_version", "", ["service"], registry=registry)
    counter = Counter("recsys_degraded_total", "", ["service", "mode"], registry=registry)
    for route, values in latencies.items():
        for value in values:
            latency.labels(*route).observe(value)
    for service, v in (versions or {}).items():
        version.labels(service).set(v)
    for mode, n in (degraded or {}).items():
        counter.labels(*mode).inc(n)
    return generate_latest(registry).decode()


def test_serving_route_only_with_every_status() -> None:
    text = _exposition(
        {
            ("candidate", "/candidates", "200"): [0.003] * 90,
            ("candidate", "/candidates", "503"): [0.03] * 10,
            ("candidate", "/metrics", "200"): [0.5] * 1000,  # scrapes must not count
            ("ranker", "/rank", "200"): [0.004] * 7,  # another service in the same text
        },
        versions={"candidate": 4, "ranker": 3},
        degraded={("candidate", "popular"): 2, ("gateway", "ranker"): 9},
    )

    s = service_stats("candidate", text)

    assert s.reachable and s.route == "/candidates"
    assert (s.requests, s.errors, s.model_version) == (100, 10, 4)
    assert s.degraded == {"popular": 2}
    assert s.bucket_bounds == list(map(float, BUCKETS))
    assert s.bucket_counts[BUCKETS.index(0.005)] == 90
    assert s.bucket_counts[-1] == 100
    # 90% at 2.5-5 ms: the median interpolates inside that bucket, p99 lands in 20-50 ms.
    assert s.p50_seconds == pytest.approx(0.0025 + 0.0025 * 50 / 90)
    assert s.p99_seconds == pytest.approx(0.02 + 0.03 * 9 / 10)


def test_the_gateways_answer_cache_hits_are_its_own() -> None:
    registry = CollectorRegistry()
    cache = Counter("recsys_answer_cache_total", "", ["result"], registry=registry)
    cache.labels("hit").inc(7)
    cache.labels("miss").inc(3)
    text = generate_latest(registry).decode() + _exposition({})

    assert answer_cache(text) == {"hit": 7.0, "miss": 3.0}
    assert service_stats("gateway", text).cached == 7
    assert service_stats("candidate", text).cached == 0  # the stages keep no answers
    assert answer_cache(_exposition({})) == {"hit": 0.0, "miss": 0.0}


def test_no_requests_no_quantiles() -> None:
    s = service_stats("gateway", _exposition({}))
    assert (s.requests, s.p50_seconds, s.p99_seconds, s.model_version) == (0, None, None, None)


def test_not_prometheus_text_is_refused() -> None:
    with pytest.raises(ValueError):
        service_stats("ranker", "<html>502 Bad Gateway</html>\n")


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 0.015), (0.99, 0.0199), (0.0, 0.01), (1.0, 0.02)],
)
def test_quantile_interpolates_within_its_bucket(q: float, expected: float) -> None:
    # 100 observations, all in (10 ms, 20 ms]
    assert histogram_quantile(q, [0.01, 0.02, 0.05], [0, 100, 100], 100) == pytest.approx(expected)


def test_quantile_beyond_the_last_bucket_is_that_bound() -> None:
    assert histogram_quantile(0.99, [0.01, 0.02], [50, 60], 100) == 0.02
    assert histogram_quantile(0.5, [0.01], [0], 0) is None
    with pytest.raises(ValueError):
        histogram_quantile(1.5, [0.01], [1], 1)


def _snapshot(requests: int, in_fast: int, degraded: int = 0) -> ServiceStats:
    return ServiceStats(
        service="gateway",
        reachable=True,
        route="/recommend",
        requests=requests,
        bucket_bounds=[0.01, 0.1],
        bucket_counts=[in_fast, requests],
        degraded={"ranker": degraded},
    )


def test_window_is_what_happened_between_two_snapshots() -> None:
    before = _snapshot(1000, 1000, degraded=3)  # a thousand fast requests long ago
    after = _snapshot(1100, 1000, degraded=5)  # then a hundred slow ones

    w = window(before, after, seconds=4)

    assert (w.requests, w.requests_per_second, w.degraded) == (100, 25, 2)
    # Only the slow ones: lifetime quantiles would still say "fast".
    assert w.p50_seconds == pytest.approx(0.055)


def test_window_after_a_restart_counts_from_zero() -> None:
    w = window(_snapshot(1000, 1000), _snapshot(40, 40), seconds=2)
    assert (w.requests, w.requests_per_second) == (40, 20)
    # A service unreachable before is new as well.
    w = window(unreachable("gateway", "down"), _snapshot(10, 10), seconds=1)
    assert w.requests == 10
