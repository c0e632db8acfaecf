"""A/B experiments: start one, watch its report, stop or promote it, and the ended ones.

Everything goes through the gateway's /experiments routes (docs/api.md, "Experiments (A/B)").
Starting, stopping and promoting are admin calls: without the gateway's admin key the page says
so instead of failing.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import altair as alt
import pandas as pd
import streamlit as st

from shared.schemas.experiments import (
    ArmReport,
    Experiment,
    ExperimentReport,
)
from ui.client import GatewayClient, GatewayError, GatewayUnavailable
from ui.settings import UISettings
from ui.views import status
from ui.views.experiment_form import render_start
from ui.views.experiment_text import (
    FOCUS_KEY,
    METRIC_HELP,
    METRIC_TITLES,
    OUTCOME_KEY,
    guardrails_text,
    http_error,
    pct,
    refusal,
    when,
)

logger = logging.getLogger("recsys.ui")

# A running experiment's report is read again this often (one GET /experiments/{name}).
REFRESH_SECONDS = 5.0
# Experiments ended before `ended_by` existed: a guardrail's breach stored a reason starting so
# (shared/experiments.py, `breached`).
GUARDRAIL_PREFIX = "guardrail "
WINNER_MARK = "★ winner"

# Session state and widget keys.
REPORT_KEY = "exp_report_choice"
RERUN_KEY = "exp_rerun_for"  # (experiment, status) the page last reran for
PENDING_KEY = "exp_pending"  # (experiment, "stop" | "promote", reason or arm) awaiting a yes
STOP_REASON_KEY = "exp_stop_reason"
STOP_KEY = "exp_stop"
PROMOTE_ARM_KEY = "exp_promote_arm"
PROMOTE_KEY = "exp_promote"
CONFIRM_KEY = "exp_confirm"
CANCEL_KEY = "exp_cancel"

Action = Literal["stop", "promote"]
Outcome = tuple[Literal["success", "warning", "error"], str]
_BANNERS = {"success": st.success, "warning": st.warning, "error": st.error}


def render_experiments(client: GatewayClient, settings: UISettings) -> None:
    outcome: Outcome | None = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        level, text = outcome
        _BANNERS[level](text)
    experiments = client.experiments()  # oldest first
    running = next((e for e in experiments if e.status == "running"), None)
    st.caption(
        "Users are split between the arms by a hash of their id; each arm's answers come from "
        "its model version end to end. Starting, stopping and promoting need the gateway's "
        "admin key when it has one (UI_ADMIN_API_KEY)."
    )
    _render_report_section(settings, experiments, running)
    render_start(client, running)
    _render_ended(experiments)


# --- the report ---------------------------------------------------------------------------


def _render_report_section(
    settings: UISettings, experiments: list[Experiment], running: Experiment | None
) -> None:
    st.subheader("Report")
    if not experiments:
        st.info("No experiment yet: start one below.")
        return
    by_name = {e.name: e for e in reversed(experiments)}  # newest first
    names = list(by_name)
    focus: str | None = st.session_state.pop(FOCUS_KEY, None)
    if focus in names:
        st.session_state[REPORT_KEY] = focus
    elif st.session_state.get(REPORT_KEY) not in names:
        st.session_state[REPORT_KEY] = running.name if running is not None else names[0]
    name: str = st.selectbox(
        "Experiment",
        names,
        key=REPORT_KEY,
        format_func=lambda n: f"{n} ({by_name[n].status})",
    )
    _report_panel(settings, name, by_name[name].status)


def _report_panel(settings: UISettings, name: str, seen: str) -> None:
    """The report, read again every REFRESH_SECONDS while the experiment runs."""

    @st.fragment(run_every=REFRESH_SECONDS if seen == "running" else None)
    def panel() -> None:
        # A timed rerun happens outside the page's guard: the panel handles the gateway itself.
        with GatewayClient.from_settings(settings) as client:
            try:
                report = client.experiment(name)
                now = (name, report.experiment.status)
                if now[1] != seen and st.session_state.get(RERUN_KEY) != now:
                    # It ended meanwhile (a guardrail, or someone else): the whole page changes.
                    # Once per change, should the list and the report ever disagree for good.
                    st.session_state[RERUN_KEY] = now
                    st.rerun(scope="app")
                render_report(report)
                if report.experiment.status == "running":
                    _render_actions(client, report)
            except GatewayUnavailable:
                st.error(status.gateway_down_text(settings))
            except GatewayError as err:
                st.error(f"Could not read experiment {name}: {http_error(err)}")
            except Exception:
                logger.exception("unexpected error while rendering the experiment's report")
                st.error("Something unexpected went wrong; the details are in the UI's log.")

    panel()


def render_report(report: ExperimentReport) -> None:
    exp = report.experiment
    versions = {a.name: a.version for a in exp.arms}
    _status_banner(exp, versions)
    metric = METRIC_TITLES[exp.primary_metric]
    started = when(exp.created)
    span = f"started {started}" + (f", ended {when(exp.ended)}" if exp.ended else "")
    refresh = f" · read again every {REFRESH_SECONDS:.0f} s" if exp.status == "running" else ""
    st.caption(
        f"{span} (UTC) · primary metric: {metric} ({METRIC_HELP[exp.primary_metric]}) · "
        f"guardrails: {guardrails_text(exp.guardrails)}{refresh}"
    )
    if report.winner is not None:
        st.success(
            f"Verdict: {report.verdict}. Winner: {report.winner} "
            f"(version {versions.get(report.winner, '?')})."
        )
    else:
        st.info(f"Verdict: {report.verdict}.")
    # st.table rather than st.dataframe: its cells are real page text (searchable, testable).
    st.table([_arm_row(a, metric, report.winner) for a in report.arms], hide_index=True)
    st.caption(
        "vs control: the arm's primary metric minus the control's, in percentage points, with "
        "an always-valid confidence interval (it may be watched continuously); an arm wins "
        "only when the interval leaves out 0. p99: the arm's last 1,000 answers, gateway time."
    )
    _interval_chart(report.arms[1:], metric)
    with st.expander("Every count"):
        st.table([_count_row(a) for a in report.arms], hide_index=True)


def _status_banner(exp: Experiment, versions: dict[str, int]) -> None:
    ended = when(exp.ended) if exp.ended else "—"
    reason = exp.reason or "no reason given"
    by_guardrail = exp.ended_by == "guardrail" or (
        exp.ended_by is None and reason.startswith(GUARDRAIL_PREFIX)
    )
    if exp.status == "stopped" and by_guardrail:
        st.error(
            f"**Stopped by a guardrail** at {ended} UTC: {reason}. Everyone is served by the "
            "current version again."
        )
    elif exp.status == "stopped":
        st.warning(f"Stopped at {ended} UTC: {reason}.")
    elif exp.status == "promoted" and exp.promoted is not None:
        st.success(
            f"Promoted at {ended} UTC: arm {exp.promoted} (version "
            f"{versions.get(exp.promoted, '?')}) became the current version."
        )


def _arm_row(arm: ArmReport, metric: str, winner: str | None) -> dict[str, Any]:
    vs = arm.vs_control
    return {
        "arm": arm.name,
        "version": arm.version,
        "share": f"{arm.share:.0%}" if round(arm.share, 2) == arm.share else f"{arm.share:.2%}",
        "lists": arm.lists,
        "items shown": arm.items_shown,
        "degraded": f"{arm.degraded} ({arm.degraded / arm.lists:.1%})" if arm.lists else "0",
        metric: pct(arm.primary),
        "p99": "—" if arm.p99_ms is None else f"{arm.p99_ms:.1f} ms",
        "vs control": "—" if vs is None else f"{vs.estimate * 100:+.2f} pp",
        "interval": "—" if vs is None else f"[{vs.low * 100:+.2f}, {vs.high * 100:+.2f}] pp",
        "": WINNER_MARK if arm.name == winner else "",
    }


def _count_row(arm: ArmReport) -> dict[str, Any]:
    return {
        "arm": arm.name,
        "clicks": arm.clicks,
        "add to cart": arm.add_to_cart,
        "purchases": arm.purchases,
        "revenue": f"{arm.revenue:.2f}",
        "lists clicked": arm.lists_clicked,
        "lists with add-to-cart": arm.lists_with_cart,
        "lists converted": arm.lists_converted,
    }


def _interval_chart(treatments: list[ArmReport], metric: str) -> None:
    """Each treatment's difference from the control (a point) and its interval (a bar), with the
    line at 0: an arm wins when its bar stays off that line."""
    compared = [(a.name, a.vs_control) for a in treatments if a.vs_control is not None]
    if not compared:
        return
    frame = pd.DataFrame(
        {
            "arm": [name for name, _ in compared],
            "difference": [round(d.estimate * 100, 4) for _, d in compared],
            "low": [round(d.low * 100, 4) for _, d in compared],
            "high": [round(d.high * 100, 4) for _, d in compared],
        }
    )
    # The axis always shows 0, with a margin on both sides so that the line at 0 is seen.
    left, right = min(0.0, float(frame["low"].min())), max(0.0, float(frame["high"].max()))
    margin = (right - left) * 0.1 or 1.0
    title = f"{metric} minus the control's (pp)"
    x = alt.X("low:Q", title=title, scale=alt.Scale(domain=[left - margin, right + margin]))
    y = alt.Y("arm:N", title=None, sort=None)
    base = alt.Chart(frame, height=60 + 40 * len(compared))
    interval = base.mark_rule(strokeWidth=3).encode(
        x=x, x2="high:Q", y=y, tooltip=["arm", "low", "high"]
    )
    point = base.mark_point(filled=True, size=80).encode(
        x="difference:Q", y=y, tooltip=["arm", "difference"]
    )
    zero = base.mark_rule(strokeDash=[4, 4], color="gray").encode(x=alt.datum(0))
    st.altair_chart(alt.layer(interval, point, zero), width="stretch")


# --- stop and promote ---------------------------------------------------------------------


def _render_actions(client: GatewayClient, report: ExperimentReport) -> None:
    exp = report.experiment
    stop, promote = st.columns(2)
    with stop:
        reason = st.text_input(
            "Reason to stop (optional)",
            key=STOP_REASON_KEY,
            max_chars=500,
            placeholder="stopped by hand",
        ).strip()
        if st.button(
            "Stop",
            key=STOP_KEY,
            help="Everyone goes back to the current version; it cannot "
            "be restarted (names are never reused).",
        ):
            st.session_state[PENDING_KEY] = (exp.name, "stop", reason or None)
    with promote:
        arms = [a.name for a in exp.arms]
        arm: str | None = st.selectbox(
            "Arm to promote",
            arms,
            index=arms.index(report.winner) if report.winner in arms else None,
            key=PROMOTE_ARM_KEY,
            placeholder="no winner yet: pick an arm",
            format_func=lambda a: f"{a} (winner)" if a == report.winner else a,
        )
        if st.button(
            "Promote",
            key=PROMOTE_KEY,
            disabled=arm is None,
            help="Its version becomes the current one for everyone; the experiment ends.",
        ):
            st.session_state[PENDING_KEY] = (exp.name, "promote", arm)
    pending: tuple[str, Action, str | None] | None = st.session_state.get(PENDING_KEY)
    if pending is None:
        return
    name, action, value = pending
    if name != exp.name or (action == "promote" and value != arm):
        del st.session_state[PENDING_KEY]  # another experiment, or the pick changed: ask again
        return
    versions = {a.name: a.version for a in exp.arms}
    if action == "stop":
        st.warning(
            f"Stop {exp.name}? Everyone is served by the current version again, and the "
            "experiment cannot be restarted."
        )
        label = f"Confirm: stop {exp.name}"
    else:
        st.warning(
            f"Promote arm {value} of {exp.name}? Its version {versions[str(value)]} becomes the "
            "current version for everyone, and the experiment ends."
        )
        label = f"Confirm: promote {value}"
    confirm, cancel, _ = st.columns([2, 1, 5])
    if confirm.button(label, key=CONFIRM_KEY, type="primary"):
        del st.session_state[PENDING_KEY]
        _act(client, exp, action, value)
    if cancel.button("Cancel", key=CANCEL_KEY):
        del st.session_state[PENDING_KEY]
        st.rerun(scope="app")


def _act(client: GatewayClient, exp: Experiment, action: Action, value: str | None) -> None:
    """Stop or promote, then rerun the whole page on its new state with the outcome on top."""
    verb = "stop" if action == "stop" else f"promote arm {value} of"
    try:
        if action == "stop":
            ended = client.stop_experiment(exp.name, value)
        else:
            ended = client.promote_experiment(exp.name, value)
    except GatewayUnavailable as err:
        st.session_state[OUTCOME_KEY] = ("error", f"Could not {verb} {exp.name}: {err}")
    except GatewayError as err:
        st.session_state[OUTCOME_KEY] = ("error", f"Could not {verb} {exp.name}: {refusal(err)}")
    else:
        st.session_state[OUTCOME_KEY] = _ended(ended, action)
    st.session_state[FOCUS_KEY] = exp.name
    st.rerun(scope="app")


def _ended(exp: Experiment, action: Action) -> Outcome:
    versions = {a.name: a.version for a in exp.arms}
    if action == "promote" and exp.status == "promoted" and exp.promoted is not None:
        return (
            "success",
            f"Arm {exp.promoted} of {exp.name} promoted: version {versions[exp.promoted]} is now "
            "the current version.",
        )
    if action == "stop" and exp.status == "stopped":
        return (
            "success",
            f"Experiment {exp.name} stopped ({exp.reason}): everyone is served by the current "
            "version again.",
        )
    # Stopping an ended experiment changes nothing: the gateway answers with it as it was.
    return ("warning", f"Experiment {exp.name} had already ended: {exp.status}, {exp.reason}.")


# --- the ended ones -----------------------------------------------------------------------


def _render_ended(experiments: list[Experiment]) -> None:
    st.subheader("Ended experiments")
    ended = [e for e in reversed(experiments) if e.status != "running"]
    if not ended:
        st.caption("None has ended yet.")
        return
    st.table([_ended_row(e) for e in ended], hide_index=True)


def _ended_row(exp: Experiment) -> dict[str, str]:
    return {
        "name": exp.name,
        "status": exp.status,
        "started (UTC)": when(exp.created),
        "ended (UTC)": when(exp.ended) if exp.ended else "—",
        "arms": " · ".join(f"{a.name} v{a.version} {a.share:.0%}" for a in exp.arms),
        "primary metric": METRIC_TITLES[exp.primary_metric],
        "promoted": exp.promoted or "—",
        "reason": exp.reason or "—",
    }
