"""Serving statistics from the services' Prometheus text: requests, latency quantiles, versions.

Prometheus histograms are cumulative since the process started, so one scrape gives lifetime
figures; two scrapes give those of the time between them (`window`), which is what a live view
wants. Quantiles are estimated from the buckets as Prometheus' `histogram_quantile` does: linear
interpolation inside the bucket that holds the rank, so they are only as fine as the buckets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from shared.schemas.serving import ServiceStats

# What each service is for: the route its latency and request rate are measured on (health
# checks and scrapes would otherwise dilute them).
SERVING_ROUTES = {"gateway": "/recommend", "candidate": "/candidates", "ranker": "/rank"}

_LATENCY = "recsys_request_seconds"
_VERSION = "recsys_model_version"
_DEGRADED = "recsys_degraded"
_CACHE = "recsys_answer_cache_total"


def service_stats(service: str, metrics_text: str) -> ServiceStats:
    """The serving route of `service` as the Prometheus exposition `metrics_text` tells it."""
    route = SERVING_ROUTES[service]
    buckets: dict[float, float] = {}
    requests = errors = 0.0
    version: int | None = None
    degraded: dict[str, int] = {}
    cached = 0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == _CACHE and labels.get("result") == "hit" and service == "gateway":
                cached = int(sample.value)  # the gateway's own metric: no service label
            if labels.get("service") != service:
                continue
            if family.name == _LATENCY and labels.get("route") == route:
                if sample.name == f"{_LATENCY}_bucket":
                    le = float(labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + sample.value
                elif sample.name == f"{_LATENCY}_count":
                    requests += sample.value
                    if labels.get("status", "").startswith("5"):
                        errors += sample.value
            elif family.name == _VERSION and sample.name == _VERSION:
                version = int(sample.value)
            elif family.name == _DEGRADED and sample.name == f"{_DEGRADED}_total":
                mode = labels.get("mode", "unknown")
                degraded[mode] = degraded.get(mode, 0) + int(sample.value)
    finite = sorted(b for b in buckets if math.isfinite(b))
    bounds, counts = finite, [int(buckets[b]) for b in finite]
    total = int(requests)
    return ServiceStats(
        service=service,
        reachable=True,
        route=route,
        model_version=version,
        requests=total,
        errors=int(errors),
        bucket_bounds=bounds,
        bucket_counts=counts,
        p50_seconds=histogram_quantile(0.5, bounds, counts, total),
        p99_seconds=histogram_quantile(0.99, bounds, counts, total),
        degraded=degraded,
        cached=cached,
    )


def unreachable(service: str, detail: str) -> ServiceStats:
    return ServiceStats(
        service=service, reachable=False, detail=detail, route=SERVING_ROUTES[service]
    )


def histogram_quantile(
    q: float, bounds: Sequence[float], cumulative: Sequence[int], total: int
) -> float | None:
    """The q-quantile of observations in cumulative buckets (`cumulative[i]` observations at or
    under `bounds[i]`, `total` in all, the +Inf bucket included); None without observations.

    Past the last finite bound the answer is that bound: the histogram cannot say more.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank and count > below:
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return float(bounds[-1]) if bounds else None


@dataclass(frozen=True)
class Window:
    """One service between two snapshots."""

    seconds: float
    requests: int
    errors: int
    degraded: int
    p50_seconds: float | None
    p99_seconds: float | None

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def window(before: ServiceStats, after: ServiceStats, seconds: float) -> Window:
    """What `after` added to `before`, `seconds` later. A service that restarted in between
    (its counters went down) or changed buckets counts from zero."""
    restarted = (
        after.requests < before.requests or after.bucket_bounds != before.bucket_bounds
    ) or not before.reachable
    base = ServiceStats(service=after.service, reachable=True, route=after.route)
    if not restarted:
        base = before
    base_counts = base.bucket_counts or [0] * len(after.bucket_counts)
    counts = [a - b for a, b in zip(after.bucket_counts, base_counts, strict=True)]
    requests = after.requests - base.requests
    degraded = sum(after.degraded.values()) - sum(base.degraded.values())
    return Window(
        seconds=seconds,
        requests=requests,
        errors=after.errors - base.errors,
        degraded=max(degraded, 0),
        p50_seconds=histogram_quantile(0.5, after.bucket_bounds, counts, requests),
        p99_seconds=histogram_quantile(0.99, after.bucket_bounds, counts, requests),
    )


def ranker_members(metrics_text: str) -> tuple[float, float]:
    """(members, members predicting with native code) of the ranker's current version, from its
    Prometheus exposition; (0, 0) before a version is loaded."""
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name in ("recsys_ranker_members", "recsys_ranker_native_members")
    }
    return values.get("recsys_ranker_members", 0.0), values.get("recsys_ranker_native_members", 0.0)


def kept_neighbours(metrics_text: str) -> dict[str, float]:
    """The candidate service's kept neighbours for its current version, from its Prometheus
    exposition: seeds found kept ("hit"), seeds searched ("miss"), items kept ("items")."""
    found = {"hit": 0.0, "miss": 0.0, "items": 0.0}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "recsys_candidate_neighbour_lookups":
                found[sample.labels["result"]] = sample.value
            elif sample.name == "recsys_candidate_neighbour_items":
                found["items"] = sample.value
    return found


def answer_cache(metrics_text: str) -> dict[str, float]:
    """The gateway's answer cache since it started, from its Prometheus exposition: answers
    served again ("hit") and computed ("miss")."""
    found = {"hit": 0.0, "miss": 0.0}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == _CACHE:
                found[sample.labels["result"]] = sample.value
    return found
