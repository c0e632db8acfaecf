"""Page header: which model version the gateway serves."""

from __future__ import annotations

import streamlit as st

from shared.schemas import ModelsResponse


def render_header(models: ModelsResponse) -> None:
    if models.current is None:
        st.subheader("No model served yet")
        return
    st.subheader(f"Serving model version {models.current}")
    current = next((m for m in models.versions if m.version == models.current), None)
    if current is None:
        return
    metrics = " · ".join(f"{name} {value:.3f}" for name, value in sorted(current.metrics.items()))
    trained = current.created_at.strftime("%Y-%m-%d %H:%M")
    st.caption(f"Trained on {current.dataset} at {trained}" + (f" · {metrics}" if metrics else ""))
