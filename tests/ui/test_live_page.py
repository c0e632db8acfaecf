"""The Live page through AppTest: rates and latency between two /stats samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.ui.conftest import FakeGateway, Reply, fake_gateway
from ui.views.live import SAMPLE_KEY

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
PAGE = "app_pages/live.py"
METRIC_LABELS = ["model version", "requests/s", "latency p50", "latency p99", "degraded answers"]


def _stats(gateway: FakeGateway, raw: bytes) -> Reply:
    """Every call 2 s later than the one before, with 100 more requests, all in 10-20 ms."""
    n = gateway.state["calls"] = gateway.state.get("calls", 0) + 1
    clock = gateway.state["clock"] = gateway.state.get("clock", 1000.0) + 2
    served = {"bucket_bounds": [0.01, 0.02], "bucket_counts": [0, 100 * n], "requests": 100 * n}
    services = [
        {
            "service": "gateway",
            "reachable": True,
            "route": "/recommend",
            **served,
            "errors": n,
            "p50_seconds": 0.015,
            "p99_seconds": 0.0199,
            "degraded": {"ranker": 5 * n, "overload": 2 * n},
            "cached": 60 * n,
        },
        {"service": "candidate", "reachable": True, "route": "/candidates", "model_version": 2}
        | served,
        {
            "service": "ranker",
            "reachable": False,
            "route": "/rank",
            "detail": "http://ranker:8002 is unreachable (ConnectError)",
        },
    ]
    return 200, {"collected_at": clock, "current": 3, "services": services}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    fake = FakeGateway({("GET", "/stats"): _stats})
    with fake_gateway(fake) as url:
        monkeypatch.setenv("UI_GATEWAY_URL", url)
        yield fake


def _open(timeout: float = 30) -> AppTest:
    return AppTest.from_file(APP, default_timeout=timeout).run().switch_page(PAGE).run()


def _metrics(at: AppTest) -> list[dict[str, str]]:
    """Per reachable service, its metrics by label (five each, in page order)."""
    values = [(m.label, m.value) for m in at.metric]
    assert [label for label, _ in values] == METRIC_LABELS * (len(values) // 5)
    return [dict(values[i : i + 5]) for i in range(0, len(values), 5)]


def test_rates_need_two_samples(gateway: FakeGateway) -> None:
    at = _open()

    assert not at.exception
    gw, candidate = _metrics(at)
    assert gw == {
        "model version": "—",
        "requests/s": "—",
        "latency p50": "—",
        "latency p99": "—",
        "degraded answers": "—",
    }
    assert candidate["model version"] == "2"
    captions = [c.value for c in at.caption]
    assert any("rates and latency after the next refresh" in c for c in captions), captions
    # Lifetime figures are there from the first sample.
    assert any(
        c.startswith("Since it started: 100 requests, p50 15.0 ms, p99 19.9 ms, 1 errors (5xx)")
        and "60 answered from its answer cache" in c
        and c.endswith("degraded: 5 without the ranker, 2 shed (overload)")
        for c in captions
    ), captions

    at.run()  # the next sample: 100 requests in 2 s

    assert not at.exception
    gw, candidate = _metrics(at)
    assert gw == {
        "model version": "—",
        "requests/s": "50.0",
        "latency p50": "15.0 ms",
        "latency p99": "19.9 ms",
        "degraded answers": "7",
    }
    assert candidate["requests/s"] == "50.0"
    assert any("over the last 2 s" in c.value for c in at.caption)
    assert not at.get("vega_lite_chart")  # one point in time is no line yet

    at.run()
    assert len(at.get("vega_lite_chart")) == 2  # requests/s and p99 over time


def test_version_mismatch_and_unreachable_service_are_flagged(gateway: FakeGateway) -> None:
    at = _open()

    assert [w.value for w in at.warning] == [
        "Serves version 2, the registry's current is 3: still loading it, or it refused it "
        "(see its log)."
    ]
    assert [e.value for e in at.error] == [
        "Not reachable: http://ranker:8002 is unreachable (ConnectError)"
    ]


def test_a_restarted_service_counts_from_zero(gateway: FakeGateway) -> None:
    at = _open().run()  # two samples: 200 requests so far
    gateway.state["calls"] = 0  # the next sample has 100: counters started over (a restart)

    at.run()

    gw, _ = _metrics(at)
    assert gw["requests/s"] == "50.0"  # its 100 requests since the restart, not -100


@pytest.mark.integration
def test_live_stack_stats(monkeypatch: pytest.MonkeyPatch, live_gateway_url: str) -> None:
    monkeypatch.setenv("UI_GATEWAY_URL", live_gateway_url)
    current = httpx.get(f"{live_gateway_url}/models", timeout=10).json()["current"]

    at = _open(timeout=60)
    for user in ("U1", "U2", "U3", "U4"):
        httpx.get(f"{live_gateway_url}/recommend", params={"user": user}, timeout=10)
    at.run()

    assert not at.exception
    assert not at.error and not at.warning, [*at.error, *at.warning]
    gw, candidate, ranker = _metrics(at)
    assert candidate["model version"] == ranker["model version"] == str(current)
    assert float(gw["requests/s"]) > 0
    assert gw["latency p99"].endswith(" ms")
    assert at.session_state[SAMPLE_KEY].current == current


def _online(gateway: FakeGateway, raw: bytes) -> Reply:
    version = {"version": 3, "lists": 200, "items_shown": 2000, "clicks": 50, "add_to_cart": 10,
               "purchases": 4, "revenue": 120.0, "ctr": 0.025, "add_to_cart_rate": 0.05,
               "conversion_rate": 0.02, "revenue_per_1000_lists": 600.0,
               "ctr_by_position": {"1": 0.1, "2": 0.05}}  # fmt: skip
    return 200, {"window_hours": 24, "versions": [version]}


def test_online_metrics_per_version_are_shown(gateway: FakeGateway) -> None:
    gateway.routes[("GET", "/online/metrics")] = _online
    at = _open()

    assert not at.exception
    (table,) = at.dataframe
    row = table.value.iloc[0].to_dict()
    assert row["version"] == 3 and row["answers"] == 200 and row["CTR"] == "2.50 %"
    assert row["revenue / 1,000 answers"] == "600.00"
    assert any(c.value == "CTR by position" for c in at.caption)
    assert ("GET", "/online/metrics?window_hours=24") in [(m, p) for m, p, _ in gateway.requests]


def test_without_online_metrics_the_page_still_serves(gateway: FakeGateway) -> None:
    at = _open()  # the fake has no /online/metrics: 404

    assert not at.exception
    assert [i.value for i in at.info] == ["Online metrics are unavailable right now."]
    assert len(at.metric) == 10  # the serving figures are all there
