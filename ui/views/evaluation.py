"""A model version's offline evaluation, plotted as `recsys evaluate --report` does."""

from __future__ import annotations

import math

import streamlit as st

from shared.schemas.models import EvaluationSummary, ModelDetail
from ui.client import GatewayClient

VERSION_KEY = "evaluation_version"
RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")
# Baselines scored beside the two-stage model; their metrics carry the name as a prefix in the
# flat manifest metrics.
BASELINES = ("popularity", "candidates_only")
MAIN_MODEL = "two_stage"
# Headline numbers of the whole pipeline, not of one model of the comparison.
PIPELINE_METRICS = [
    ("ranker AUC", "ranker_auc"),
    ("validation NDCG@10", "valid_ndcg@10"),
    ("ranker best iteration", "ranker_best_iteration"),
]


def render_evaluation(client: GatewayClient) -> None:
    models = client.models()
    if not models.versions:
        st.info("No model versions yet: train one on the Training page.")
        return
    newest_first = sorted((m.version for m in models.versions), reverse=True)
    default = newest_first.index(models.current) if models.current in newest_first else 0
    version: int = st.selectbox(
        "Version",
        newest_first,
        index=default,
        key=VERSION_KEY,
        format_func=lambda v: f"{v} (current)" if v == models.current else str(v),
    )
    detail = client.model(version)
    evaluation = detail.evaluation or from_flat_metrics(detail.metrics)
    trained = detail.created_at.strftime("%Y-%m-%d %H:%M")
    st.caption(
        f"Version {detail.version} · trained on {detail.dataset} at {trained} UTC · "
        f"protocol {evaluation.protocol} · {evaluation.n_users} users evaluated · "
        "every model fit on the same training part and scored on held-out items over the "
        "whole catalog"
    )
    _headline(detail)
    k = evaluation.k
    if not evaluation.models:
        st.info(f"Version {version} has no held-out metrics.")
        return
    st.subheader(f"Ranking metrics @{k} by model")
    st.table(metric_rows(evaluation), hide_index=True)
    bars_area, curves_area = st.columns(2)
    with bars_area:
        st.markdown(f"**Metrics @{k}**")
        _bars(evaluation)
    with curves_area:
        st.markdown("**NDCG@K by cutoff**")
        _curves(evaluation, version)


def _bars(evaluation: EvaluationSummary) -> None:
    metrics = [f"{m}@{evaluation.k}" for m in RANKING_METRICS]
    names = list(evaluation.models)
    bars: dict[str, list[str] | list[float | None]] = {"metric": metrics}
    for name in names:
        bars[label(name)] = [evaluation.models[name].get(m) for m in metrics]
    st.bar_chart(
        bars,
        x="metric",
        y=[label(n) for n in names],
        x_label="metric",
        y_label="score",
        sort=False,
        stack=False,
        height=340,
    )


def _curves(evaluation: EvaluationSummary, version: int) -> None:
    curves = {name: curve for name, curve in evaluation.ndcg_curves.items() if curve}
    if not curves:
        st.info(
            f"Version {version} was trained before NDCG@K curves were kept in the manifest: "
            "retrain to see them."
        )
        return
    depth = max(len(c) for c in curves.values())
    lines: dict[str, list[int] | list[float | None]] = {"K": list(range(1, depth + 1))}
    for name, curve in curves.items():
        lines[label(name)] = [*curve, *[None] * (depth - len(curve))]
    st.line_chart(
        lines, x="K", y=[label(n) for n in curves], x_label="K", y_label="NDCG@K", height=340
    )
    st.caption(f"On the same held-out users; the headline cutoff is K = {evaluation.k}.")


def label(model: str) -> str:
    return model.replace("_", "-") if model == MAIN_MODEL else model.replace("_", " ")


def metric_rows(evaluation: EvaluationSummary) -> list[dict[str, str]]:
    k = evaluation.k
    columns = [f"{m}@{k}" for m in RANKING_METRICS]
    rows = []
    for name, scores in evaluation.models.items():
        row = {"model": label(name)}
        row.update({col: _fmt(scores.get(col), "{:.4f}") for col in columns})
        row["fit time"] = _fmt(scores.get("fit_seconds"), "{:.2f} s")
        rows.append(row)
    return rows


def from_flat_metrics(metrics: dict[str, float]) -> EvaluationSummary:
    """Versions trained before the manifest kept an evaluation: the per-model metrics are in the
    flat dict, the main model's bare and each baseline's behind its name."""
    k = 10
    wanted = [f"{m}@{k}" for m in RANKING_METRICS] + ["fit_seconds"]
    models = {MAIN_MODEL: {m: metrics[m] for m in wanted if m in metrics}}
    for name in BASELINES:
        scores = {m: metrics[f"{name}_{m}"] for m in wanted if f"{name}_{m}" in metrics}
        if scores:
            models[name] = scores
    return EvaluationSummary(
        protocol="unknown",
        k=k,
        n_users=int(metrics.get("n_test_users", 0)),
        models={name: scores for name, scores in models.items() if scores},
    )


def _headline(detail: ModelDetail) -> None:
    shown = [
        (title, detail.metrics[key]) for title, key in PIPELINE_METRICS if key in detail.metrics
    ]
    shown += [
        (f"candidate {key.split('_', 1)[1]}", value)
        for key, value in sorted(detail.metrics.items())
        if key.startswith("candidate_recall@")
    ]
    if not shown:
        return
    for column, (title, value) in zip(st.columns(len(shown)), shown, strict=True):
        column.metric(title, _fmt(value, "{:.0f}" if "iteration" in title else "{:.3f}"))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _fmt(value: float | None, pattern: str) -> str:
    return pattern.format(value) if _finite(value) else "—"
