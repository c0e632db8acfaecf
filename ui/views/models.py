"""Registry operations: every model version, how they compare, switching the served one, and how
a version's recipe was chosen."""

from __future__ import annotations

import math
from typing import Literal

import streamlit as st

from shared.schemas.models import ModelsResponse, ModelSummary
from ui.client import GatewayClient, GatewayError
from ui.settings import UISettings
from ui.views.recommendations import EXAMPLE_USERS
from ui.views.serving import wait_until_served
from ui.views.tuning import FINISHED_KEY, SECTION_TITLE, render_tuning

# Marker in the table's "current" column; the tests look for it.
CURRENT_MARK = "★ current"
# (column title, manifest metric key); all held-out except the validation NDCG the promotion
# gate compares.
METRIC_COLUMNS = [
    ("NDCG@10", "ndcg@10"),
    ("popularity NDCG@10", "popularity_ndcg@10"),
    ("recall@10", "recall@10"),
    ("ranker AUC", "ranker_auc"),
    ("validation NDCG@10", "valid_ndcg@10"),
]
CHART_METRICS = [("two-stage model", "ndcg@10"), ("popularity", "popularity_ndcg@10")]

TUNING_VERSION_KEY = "tuning_version"
CHOICE_KEY = "activate_choice"
ACTIVATE_KEY = "activate"
CONFIRM_KEY = "activate_confirm"
CANCEL_KEY = "activate_cancel"
# Session state carries the two-step flow across reruns: the version awaiting confirmation,
# then the outcome to show once the page has rerun with the new current version.
PENDING_KEY = "activate_pending"
OUTCOME_KEY = "activate_outcome"
# Any id will do: unknown users get popular items, still stamped with the serving version.
_PROBE_USER = EXAMPLE_USERS[0]

Outcome = tuple[Literal["success", "warning", "error"], str]
_BANNERS = {"success": st.success, "warning": st.warning, "error": st.error}


def render_models(client: GatewayClient, settings: UISettings) -> None:
    outcome: Outcome | None = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        level, text = outcome
        _BANNERS[level](text)
    models = client.models()
    if not models.versions:
        st.info("No model versions yet: train one with Retrain on the Recommendations page.")
        return
    newest_first = sorted(models.versions, key=lambda m: m.version, reverse=True)
    served = "no version is current" if models.current is None else f"serving {models.current}"
    st.subheader(f"{len(newest_first)} versions in the registry · {served}")
    # A stage that refused the current version keeps serving the one it had: say so, the
    # table's "current" is then not what users get.
    readiness = client.readiness()
    if readiness is not None:
        for stage, why in readiness.refused.items():
            older = readiness.versions.get(stage)
            st.warning(f"The {stage} service still serves version {older}: {why}")
    st.table([_row(m, models.current) for m in newest_first], hide_index=True)
    _render_chart(models.versions)
    _render_activation(client, settings, models, newest_first)
    _render_tuning(client, models, newest_first)


def _row(model: ModelSummary, current: int | None) -> dict[str, str | int]:
    row: dict[str, str | int] = {
        "version": model.version,
        "created (UTC)": model.created_at.strftime("%Y-%m-%d %H:%M"),
        "dataset": model.dataset,
    }
    for title, key in METRIC_COLUMNS:
        row[title] = _fmt(model.metrics.get(key))
    row["current"] = CURRENT_MARK if model.version == current else ""
    return row


def _fmt(value: float | None) -> str:
    # Pre-formatted: st.table would print raw floats, and older manifests lack some metrics.
    return f"{value:.3f}" if value is not None and math.isfinite(value) else "—"


def _render_chart(versions: list[ModelSummary]) -> None:
    compared = sorted((m for m in versions if "ndcg@10" in m.metrics), key=lambda m: m.version)
    if not compared:
        return
    st.subheader("Held-out NDCG@10 by version")
    data: dict[str, list[str] | list[float | None]] = {
        "version": [f"v{m.version}" for m in compared]
    }
    for label, key in CHART_METRICS:
        data[label] = [m.metrics.get(key) for m in compared]
    # sort=False keeps version order (sorting the labels would put v10 before v2).
    st.bar_chart(
        data,
        x="version",
        y=[label for label, _ in CHART_METRICS],
        x_label="model version",
        y_label="NDCG@10",
        sort=False,
        stack=False,
        height=300,
    )
    st.caption(
        "Each version is scored on the last days of the data it was trained on: "
        "versions trained on different datasets are not comparable."
    )


def _render_activation(
    client: GatewayClient,
    settings: UISettings,
    models: ModelsResponse,
    newest_first: list[ModelSummary],
) -> None:
    st.subheader("Serve another version")
    others = {m.version: m for m in newest_first if m.version != models.current}
    if not others:
        st.caption("There is no other version yet: train one to have something to switch to.")
        return
    choice: int = st.selectbox(
        "Version",
        list(others),
        key=CHOICE_KEY,
        format_func=lambda v: _describe(others[v]),
        help="Rollback or roll forward; the services switch without a restart.",
    )
    if st.button("Activate", key=ACTIVATE_KEY):
        st.session_state[PENDING_KEY] = choice
    pending: int | None = st.session_state.get(PENDING_KEY)
    if pending is None:
        return
    if pending != choice:  # the pick changed (or became current meanwhile): ask again
        del st.session_state[PENDING_KEY]
        return
    current = "no version" if models.current is None else f"version {models.current}"
    st.warning(f"Serve version {pending} instead of {current}? Every service switches to it.")
    confirm, cancel, _ = st.columns([2, 1, 5])
    if confirm.button(f"Confirm: serve version {pending}", key=CONFIRM_KEY, type="primary"):
        del st.session_state[PENDING_KEY]
        _activate(client, settings, pending)
    if cancel.button("Cancel", key=CANCEL_KEY):
        del st.session_state[PENDING_KEY]
        st.rerun()


def _render_tuning(
    client: GatewayClient, models: ModelsResponse, newest_first: list[ModelSummary]
) -> None:
    """How the picked version's recipe was chosen; it opens on the version the last training job
    of this session produced, else on the current one."""
    st.subheader(SECTION_TITLE)
    versions = [m.version for m in newest_first]
    finished: int | None = st.session_state.get(FINISHED_KEY)
    opening = models.current if finished is None else finished
    version: int = st.selectbox(
        "Version to explain",
        versions,
        index=versions.index(opening) if opening in versions else 0,
        key=TUNING_VERSION_KEY,
        format_func=lambda v: f"{v} (current)" if v == models.current else str(v),
    )
    try:
        detail = client.model(version)
    except GatewayError as err:  # e.g. 404: retention deleted it since the list was read
        st.warning(f"Could not read version {version}: HTTP {err.status_code}: {err.detail}")
        return
    render_tuning(detail)


def _describe(model: ModelSummary) -> str:
    trained = model.created_at.strftime("%Y-%m-%d %H:%M")
    ndcg = _fmt(model.metrics.get("ndcg@10"))
    return f"{model.version} · {model.dataset} · {trained} UTC · NDCG@10 {ndcg}"


def _activate(client: GatewayClient, settings: UISettings, version: int) -> None:
    """Move `current`, wait for the services to follow, then rerun to show the new state."""
    try:
        client.activate(version)
    except GatewayError as err:  # e.g. 404: retention deleted it since the page was drawn
        detail = f"HTTP {err.status_code}: {err.detail}"
        st.session_state[OUTCOME_KEY] = ("error", f"Could not activate version {version}: {detail}")
        st.rerun()
    # GatewayUnavailable propagates: the page's guard shows the "not reachable" banner.
    with st.spinner(f"Waiting for the services to load version {version}…"):
        served = wait_until_served(client, settings, _PROBE_USER, version)
    if served == version:
        st.session_state[OUTCOME_KEY] = ("success", f"Version {version} is now served.")
    elif served is None:  # the gateway did not say which version answered
        st.session_state[OUTCOME_KEY] = ("success", f"Version {version} is now current.")
    else:
        st.session_state[OUTCOME_KEY] = (
            "warning",
            f"Version {version} is current in the registry, but the services still answer with "
            f"version {served}: they may have refused it (see their logs).",
        )
    st.rerun()
