"""Live view of serving: requests/s, latency, model version and degraded answers per service.

The gateway's GET /stats gives counters since each service started; this page keeps the
previous snapshot and shows what happened between the two (rates need two samples), plus the
lifetime figures beside them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import altair as alt
import pandas as pd
import streamlit as st

from shared.schemas.serving import ServiceStats, StatsResponse
from shared.served import OnlineMetrics
from shared.stats import Window, window
from ui.client import GatewayClient, GatewayError, GatewayUnavailable
from ui.settings import UISettings
from ui.views import status
from ui.views.online import WINDOW_HOURS, render_online

REFRESH_SECONDS = 2.0
SAMPLE_KEY = "live_last_sample"
HISTORY_KEY = "live_history"
HISTORY_POINTS = 150  # 5 minutes at one sample every 2 s


@dataclass(frozen=True)
class Point:
    """One service's rates between two samples, for the charts."""

    at: float  # unix seconds
    service: str
    requests_per_second: float
    p99_ms: float | None


def render_live(settings: UISettings) -> None:
    """Refreshes itself every REFRESH_SECONDS; every refresh is one GET /stats."""

    @st.fragment(run_every=REFRESH_SECONDS)
    def panel() -> None:
        # A fragment rerun happens outside the page's guard: it handles the gateway itself.
        with GatewayClient.from_settings(settings) as client:
            try:
                stats = client.stats()
            except GatewayUnavailable:
                st.error(status.gateway_down_text(settings))
                return
            except GatewayError as err:
                status.gateway_error(err)
                return
            try:
                online: OnlineMetrics | None = client.online_metrics(WINDOW_HOURS)
            except (GatewayUnavailable, GatewayError):  # the serving figures still show
                online = None
        render_stats(stats, _advance(stats))
        render_online(online)

    panel()


def _advance(stats: StatsResponse) -> dict[str, Window]:
    """Windows against the previous sample (none on the first); remembers this one."""
    previous: StatsResponse | None = st.session_state.get(SAMPLE_KEY)
    st.session_state[SAMPLE_KEY] = stats
    history: deque[Point] = st.session_state.setdefault(HISTORY_KEY, deque(maxlen=HISTORY_POINTS))
    if previous is None or stats.collected_at <= previous.collected_at:
        return {}
    seconds = stats.collected_at - previous.collected_at
    before = {s.service: s for s in previous.services}
    windows = {}
    for service in stats.services:
        old = before.get(service.service)
        if old is None or not service.reachable:
            continue
        w = window(old, service, seconds)
        windows[service.service] = w
        p99 = w.p99_seconds * 1000 if w.p99_seconds is not None else None
        history.append(Point(stats.collected_at, service.service, w.requests_per_second, p99))
    return windows


def render_stats(stats: StatsResponse, windows: dict[str, Window]) -> None:
    updated = time.strftime("%H:%M:%S", time.localtime(stats.collected_at))
    current = "none" if stats.current is None else str(stats.current)
    spans = {round(w.seconds) for w in windows.values()}
    over = f"over the last {max(spans)} s" if spans else "after the next refresh"
    st.caption(
        f"Updated {updated} · the registry's current version: {current} · "
        f"rates and latency {over} (every {REFRESH_SECONDS:.0f} s; latency quantiles are "
        "estimated from the services' histogram buckets)"
    )
    for service in stats.services:
        with st.container(border=True, key=f"live-{service.service}"):
            _service(service, windows.get(service.service), stats.current)
    _charts()


def _service(service: ServiceStats, w: Window | None, current: int | None) -> None:
    st.markdown(f"**{service.service}** · `{service.route}`")
    if not service.reachable:
        st.error(f"Not reachable: {service.detail}")
        return
    if current is not None and service.model_version not in (None, current):
        st.warning(
            f"Serves version {service.model_version}, the registry's current is {current}: "
            "still loading it, or it refused it (see its log)."
        )
    version, rate, p50, p99, degraded = st.columns(5)
    version.metric(
        "model version",
        "—" if service.model_version is None else str(service.model_version),
        help="The gateway loads no model: it states the candidate stage's version.",
    )
    rate.metric("requests/s", f"{w.requests_per_second:.1f}" if w else "—")
    p50.metric("latency p50", _ms(w.p50_seconds) if w else "—")
    p99.metric("latency p99", _ms(w.p99_seconds) if w else "—")
    degraded.metric(
        "degraded answers", str(w.degraded) if w else "—", help="in this window; see below"
    )
    lifetime_degraded = ", ".join(
        f"{n} shed (overload)" if m == "overload" else f"{n} without the {m}"
        for m, n in service.degraded.items()
    )
    st.caption(
        f"Since it started: {service.requests} requests, p50 {_ms(service.p50_seconds)}, "
        f"p99 {_ms(service.p99_seconds)}, {service.errors} errors (5xx)"
        + (f", {service.cached} answered from its answer cache" if service.cached else "")
        + (f", degraded: {lifetime_degraded}" if lifetime_degraded else "")
    )


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


def _charts() -> None:
    history: deque[Point] = st.session_state.get(HISTORY_KEY, deque())
    if len({p.at for p in history}) < 2:
        return
    frame = pd.DataFrame(
        {
            "time": [datetime.fromtimestamp(p.at) for p in history],
            "service": [p.service for p in history],
            "rate": [p.requests_per_second for p in history],
            "p99": [p.p99_ms for p in history],
        }
    )
    left, right = st.columns(2)
    for column, (field, title) in ((left, ("rate", "requests/s")), (right, ("p99", "p99 ms"))):
        chart = (
            alt.Chart(frame, height=240, title=title)
            .mark_line(point=True)
            .encode(
                x=alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M:%S")),
                # 0 reads "0", not Vega's "0.000000" for an all-zero (idle) series; 20 "20"
                y=alt.Y(f"{field}:Q", title=title, axis=alt.Axis(format=",.2~f")),
                color=alt.Color("service:N", legend=alt.Legend(orient="bottom")),
                tooltip=["service", "time:T", alt.Tooltip(f"{field}:Q", title=title)],
            )
        )
        column.altair_chart(chart, width="stretch")
