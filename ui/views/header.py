"""Page header: which model version the gateway serves, and how it did offline."""

from __future__ import annotations

import streamlit as st

from shared.schemas import ModelsResponse

# Held-out metrics worth a glance: the two-stage model against the popularity baseline.
HEADLINE = [
    ("NDCG@10", "ndcg@10", "popularity_ndcg@10"),
    ("Recall@10", "recall@10", "popularity_recall@10"),
    ("Precision@10", "precision@10", "popularity_precision@10"),
]


def render_header(models: ModelsResponse) -> None:
    if models.current is None:
        st.subheader("No model served yet")
        return
    st.subheader(f"Serving model version {models.current}")
    current = next((m for m in models.versions if m.version == models.current), None)
    if current is None:
        return
    trained = current.created_at.strftime("%Y-%m-%d %H:%M")
    st.caption(f"Trained on {current.dataset} at {trained} UTC · held-out metrics vs popularity")
    m = current.metrics
    columns = st.columns(len(HEADLINE) + 1)
    for column, (label, key, baseline) in zip(columns, HEADLINE, strict=False):
        if key in m:
            delta = f"{m[key] - m[baseline]:+.3f} vs popularity" if baseline in m else None
            column.metric(label, f"{m[key]:.3f}", delta)
    if "ranker_auc" in m:
        columns[-1].metric("Ranker AUC", f"{m['ranker_auc']:.3f}")
