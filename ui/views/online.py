"""What the answers earned, per model version: the gateway's GET /online/metrics (events
attributed to the served lists they came from)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from shared.served import OnlineMetrics

WINDOW_HOURS = 24


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def render_online(metrics: OnlineMetrics | None) -> None:
    st.subheader(f"What the answers earned (last {WINDOW_HOURS} h)")
    if metrics is None:
        st.info("Online metrics are unavailable right now.")
        return
    if not metrics.versions:
        st.caption(
            "No answers served in the window yet. Clicks and purchases sent to POST /events "
            "count for the answer that showed the product (its X-Request-ID, or the latest one)."
        )
        return
    rows = [
        {
            "version": v.version,
            "answers": v.lists,
            "items shown": v.items_shown,
            "clicks": v.clicks,
            "CTR": _pct(v.ctr),
            "add-to-cart rate": _pct(v.add_to_cart_rate),
            "conversion rate": _pct(v.conversion_rate),
            "revenue / 1,000 answers": "—"
            if v.revenue_per_1000_lists is None
            else f"{v.revenue_per_1000_lists:.2f}",
        }
        for v in metrics.versions
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="online-table")
    by_position = [
        {"version": str(v.version), "position": p, "CTR": ctr}
        for v in metrics.versions
        for p, ctr in sorted(v.ctr_by_position.items())
    ]
    if by_position:
        st.caption("CTR by position")
        st.bar_chart(pd.DataFrame(by_position), x="position", y="CTR", color="version", stack=False)
