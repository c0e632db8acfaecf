"""Page header: which model version the gateway serves, and how it did offline."""

from __future__ import annotations

import streamlit as st

from shared.schemas.models import ModelsResponse

# Held-out metrics worth a glance, for the two-stage model against a baseline fitted with it.
HEADLINE = [("NDCG@10", "ndcg@10"), ("Recall@10", "recall@10"), ("Precision@10", "precision@10")]
# Strongest first: EASE where the catalog allowed its fit (graph_max_items), else popularity.
BASELINES = {"ease": "EASE", "popularity": "popularity"}


def render_header(models: ModelsResponse) -> None:
    if models.current is None:
        st.subheader("No model served yet")
        return
    st.subheader(f"Serving model version {models.current}")
    current = next((m for m in models.versions if m.version == models.current), None)
    if current is None:
        return
    m = current.metrics
    baseline = next((b for b in BASELINES if f"{b}_ndcg@10" in m), None)
    versus = f" vs {BASELINES[baseline]}" if baseline else ""
    trained = current.created_at.strftime("%Y-%m-%d %H:%M")
    st.caption(f"Trained on {current.dataset} at {trained} UTC · held-out metrics{versus}")
    columns = st.columns(len(HEADLINE) + 1)
    for column, (label, key) in zip(columns, HEADLINE, strict=False):
        if key in m:
            ref = f"{baseline}_{key}"
            delta = f"{m[key] - m[ref]:+.3f}{versus}" if ref in m else None
            column.metric(label, f"{m[key]:.3f}", delta)
    if "ranker_auc" in m:
        columns[-1].metric("Ranker AUC", f"{m['ranker_auc']:.3f}")
